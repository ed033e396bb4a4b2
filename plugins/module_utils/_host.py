# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Gathers ``ansible_facts.mlhost``: the whole picture of an ML host.

PRIVATE to the collection: no compatibility promise outside it.

``gather(root, run, environ_path)`` reads files below ``root`` and runs
commands only through ``run`` (the one door), and only when ``root`` is the
live system: an image tree has no driver to talk to. It never fails for a
missing file or program; what cannot be known is null or ``unknown``.

Whether a reboot is needed (``reboot_reasons``) and whether one would leave the host without its driver
(``reboot_blockers``: the default boot kernel lacks the DKMS-built nvidia module) are separate answers; the
second never makes the first more likely.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda, _cuda, _distro, _nvidia, _pyenv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import max_cuda_for_driver
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

Run = t.Callable[[t.List[str]], t.Any]

# Distro packages host_facts reads from the package database.
_TOOLKIT_PACKAGES = ("nvidia-cuda-toolkit",)


def _wanted_debian_package(name: str) -> bool:
    return _nvidia.is_driver_package(name) or name in _TOOLKIT_PACKAGES


def installed_packages(root: Sysroot, pkg_mgr: str | None, run: Run) -> tuple[dict[str, str], str]:
    """(name -> version) of driver and toolkit packages, and how they were read."""
    if pkg_mgr == "apt" or root.exists("var/lib/dpkg/status"):
        text = root.read("var/lib/dpkg/status", limit=256 * 1024 * 1024)
        if text is not None:
            return _nvidia.parse_dpkg_status(text, _wanted_debian_package), "dpkg"
    if pkg_mgr in ("dnf", "yum"):
        argv = ["rpm"]
        if not root.live:
            argv += ["--root", root.root]
        argv += ["-q", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"] + _nvidia.RPM_DRIVER_PACKAGES
        result = run(argv)
        if result is not None:
            return _nvidia.parse_rpm_query(result.out), "rpm"
        return {}, "unavailable"
    return {}, "unavailable"


def driver_cuda_level(root: Sysroot, run: Run) -> str | None:
    """The highest CUDA the driver supports by NVIDIA's table: the loaded driver, else the installed one."""
    loaded, flavor = _nvidia.loaded_driver(root)
    if loaded:
        return max_cuda_for_driver(loaded)
    packages, source = installed_packages(root, _distro.pkg_mgr_for(_distro.distro_facts(root), root), run)
    installed, listing = _nvidia.installed_driver(packages)
    return max_cuda_for_driver(installed) if installed else None


def nvidia_smi(root: Sysroot, run: Run) -> tuple[list[dict[str, t.Any]], str | None, str]:
    """(rows, cuda version, status); status is ok, not_found, skipped or failed: <why>."""
    if not root.live:
        return [], None, "skipped: sysroot is not the live system"
    fields = list(_nvidia.SMI_FIELDS)
    result = run(["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])
    if result is None:
        return [], None, "not_found"
    if result.rc != 0 and "compute_cap" in (result.out + result.err):
        fields.remove("compute_cap")  # drivers before 510 do not know the field
        result = run(["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])
    if result is None or result.rc != 0:
        why = ((result.out + result.err).strip().splitlines() or ["no output"])[0] if result else "not run"
        return [], None, f"failed: rc={result.rc if result else '?'}: {why}"
    rows = _nvidia.parse_smi_csv(result.out, fields)
    banner = run(["nvidia-smi"])
    cuda = _nvidia.parse_smi_cuda_version(banner.out) if banner is not None and banner.rc == 0 else None
    return rows, cuda, "ok"


DKMS_PROGRAMS = ("usr/sbin/dkms", "usr/bin/dkms", "sbin/dkms")
NO_DRIVER = "skipped: no NVIDIA GPU or driver"


def _no_command(argv: list[str]) -> None:
    """The door for readers that may run nothing (no NVIDIA GPU or driver to ask about): every program is missing."""
    return None


def dkms_status(root: Sysroot, run: Run) -> tuple[list[dict[str, t.Any]], str]:
    """(the nvidia* DKMS entries, how they were read: dkms, files or not_found).

    The live system runs ``dkms status`` (its files, when it fails and prints no status line); a sysroot is never
    run in: its ``/var/lib/dkms`` and ``/lib/modules`` are read, when the tree has a dkms program."""
    if not root.live:
        if not any(root.exists(program) for program in DKMS_PROGRAMS):
            return [], "not_found"
        return _nvidia.dkms_tree_status(root), "files"
    result = run(["dkms", "status"])
    if result is None:
        return [], "not_found"
    entries = _nvidia.parse_dkms_status(result.out)
    if result.rc != 0 and not entries:
        return _nvidia.dkms_tree_status(root), "files"
    return entries, "dkms"


def dkms_facts(root: Sysroot, run: Run, distro: dict[str, t.Any], installed_version: str | None, wanted: bool) -> dict[str, t.Any]:
    """``nvidia.dkms``: the DKMS nvidia module per installed kernel. With nothing NVIDIA on the host (``wanted``
    false) no command runs and nothing of DKMS is read; the kernels are listed all the same."""
    door = run if wanted else _no_command
    kernels = _distro.installed_kernels(root)
    default, default_source = _distro.default_kernel(root, distro, kernels, door)
    status, source = dkms_status(root, run) if wanted else ([], NO_DRIVER)
    version, missing, ok = _nvidia.dkms_driver_check(status, kernels, installed_version)
    return {
        "status": status,
        "source": source,
        "version": version,
        "kernels": kernels,
        "running_kernel": _distro.kernel_fact(root),
        "default_kernel": default,
        "default_kernel_source": default_source,
        "missing": missing,
        "ok": ok,
    }


def reboot_blockers(nvidia: dict[str, t.Any]) -> list[str]:
    """Why a reboot now would bring the host up without its NVIDIA driver: a reason not to reboot (or to fix the
    build first), never one to reboot. Only the default boot kernel counts; other kernels without the module show
    in ``nvidia.dkms.missing``."""
    dkms = nvidia.get("dkms") or {}
    default = dkms.get("default_kernel")
    if dkms.get("ok") is not False or default not in dkms.get("missing", []):
        return []
    return [
        f"the nvidia DKMS module {dkms['version']} is not installed for kernel {default} (the default boot kernel): "
        "a reboot would come up without the driver"
    ]


def reboot_reasons(nvidia: dict[str, t.Any], root: Sysroot) -> list[str]:
    reasons = []
    installed = nvidia["installed_version"]
    loaded = nvidia["loaded_version"]
    if installed and not nvidia["module_loaded"]:
        reasons.append(f"nvidia driver {installed} installed, not loaded")
    elif installed and loaded and installed != loaded:
        reasons.append(f"nvidia driver {installed} installed, {loaded} loaded")
    if installed and nvidia["nouveau_loaded"]:
        reasons.append(f"nouveau is loaded while nvidia driver {installed} is installed")
    if root.exists("run/reboot-required") or root.exists("var/run/reboot-required"):
        pkgs = (root.read("run/reboot-required.pkgs") or root.read("var/run/reboot-required.pkgs") or "").split()
        detail = f" ({', '.join(sorted(set(pkgs)))})" if pkgs else ""
        reasons.append(f"the package manager asks for a reboot{detail}")
    return reasons


def gather(root: Sysroot, run: Run, environ_path: str | None = None) -> dict[str, t.Any]:
    distro = _distro.distro_facts(root)
    pkg_mgr = _distro.pkg_mgr_for(distro, root)
    container = _distro.container_fact(root)
    gpus = _nvidia.pci_gpus(root)
    modules = _nvidia.loaded_modules(root)
    loaded_version, loaded_flavor = _nvidia.loaded_driver(root)
    packages, package_source = installed_packages(root, pkg_mgr, run)
    installed_version, driver_packages = _nvidia.installed_driver(packages)
    wanted = bool(gpus or installed_version or loaded_version or root.glob(f"{_nvidia.DKMS_TREE}/nvidia*"))
    smi, smi_cuda, smi_status = nvidia_smi(root, run) if (gpus or installed_version or loaded_version) else ([], None, NO_DRIVER)

    cuda_source = None
    cuda_driver_api = smi_cuda
    if cuda_driver_api:
        cuda_source = "nvidia-smi"
    else:
        basis = loaded_version or installed_version
        cuda_driver_api = max_cuda_for_driver(basis) if basis else None
        cuda_source = "table" if cuda_driver_api else None

    nvidia = {
        "present": bool(gpus),
        "gpu_count": len(gpus),
        "nouveau_loaded": "nouveau" in modules,
        "module_loaded": "nvidia" in modules,
        "modules": sorted(m for m in modules if m.startswith("nvidia") or m == "nouveau"),
        "loaded_version": loaded_version,
        "loaded_flavor": loaded_flavor,
        "installed_version": installed_version,
        "packages": driver_packages,
        "package_source": package_source,
        "smi": smi,
        "smi_status": smi_status,
        "cuda_driver_api": cuda_driver_api,
        "cuda_driver_api_source": cuda_source,
        "dkms": dkms_facts(root, run, distro, installed_version, wanted),
    }
    _nvidia.merge_smi_compute_capability(gpus, smi)
    nvidia["min_compute_capability"] = _nvidia.min_compute_capability(gpus)
    nvidia.update(_nvidia.fabric_facts(root, gpus))
    reasons = reboot_reasons(nvidia, root)
    return {
        "sysroot": root.root,
        "distro": distro,
        "pkg_mgr": pkg_mgr,
        "arch": _distro.arch_fact(root),
        "kernel": _distro.kernel_fact(root),
        "container": container,
        "virtualization": _distro.virtualization_fact(root),
        "secure_boot": _distro.secure_boot_fact(root, container, run),
        "gpus": gpus,
        "nvidia": nvidia,
        "cuda_toolkits": _cuda.cuda_toolkits(root, packages, run),
        "pythons": _pyenv.pythons(root, run, environ_path),
        "conda": _conda.conda_installs(root),
        "reboot_required": bool(reasons),
        "reboot_reasons": reasons,
        "reboot_blockers": reboot_blockers(nvidia),
    }


MAX_SMI_TIMEOUT = 3600
NOTHING = "Nothing was changed."


def checked_sysroot(value: t.Any) -> str:
    """The sysroot option, refused unless it names an existing directory (no NUL, no newline)."""
    if not isinstance(value, str) or not value:
        raise ModuleError(f"sysroot must be a directory path, got {value!r}. Leave it at '/' to read this host. {NOTHING}")
    if "\x00" in value or "\n" in value or "\r" in value:
        raise ModuleError(f"sysroot {value!r} holds a NUL byte or a line break. Give a plain directory path, or leave it at '/'. {NOTHING}")
    if not os.path.isdir(value):
        raise ModuleError(f"sysroot {value!r} is not a directory. Point sysroot at the root of the tree to read, or leave it at '/'. {NOTHING}")
    return value


def checked_seconds(name: str, value: t.Any, limit: int) -> int:
    """A time limit option: a whole number of seconds from 1 to ``limit``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ModuleError(f"{name} must be at least 1 second and at most {limit}, got {value!r}. {NOTHING}")
    return value


class HostFacts(Worker):
    """host_facts: the read is the plan; nothing ever changes."""

    def plan(self) -> Plan:
        sysroot = checked_sysroot(self.params.get("sysroot"))
        self.runner.timeout = checked_seconds("smi_timeout", self.params.get("smi_timeout"), MAX_SMI_TIMEOUT)

        def run(argv: list[str]) -> t.Any:
            return self.runner.run(argv, check=False)

        facts = gather(Sysroot(sysroot), run, os.environ.get("PATH"))
        return Plan(changed=False, result={"ansible_facts": {"mlhost": facts}})
