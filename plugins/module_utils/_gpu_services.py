# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""GPU node services: which fabric manager / NVLSM / IMEX / DCGM packages a node needs, and dcgmi diag's result.

PRIVATE to the collection: no compatibility promise outside it.

Pure functions only (no host access): the nvidia_driver module adds ``fabric_packages()`` to its own
package set so that fabric manager is installed, held and upgraded in the driver's transaction.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

# NVIDIA's package names, checked 2026-12-03 (search tool: NVIDIA Driver Installation Guide "Recent updates",
# the Ubuntu 590 rename table listing libnvidia-nscq as "no change", i.e. already unsuffixed in R580; the
# Fabric Manager user guide's install lines nvidia-fabricmanager-<branch> before R580):
# - Debian/Ubuntu before R580: nvidia-fabricmanager-<branch> and libnvidia-nscq-<branch>, version <full>-1.
# - Debian/Ubuntu from R580: nvidia-fabricmanager and libnvidia-nscq, the version carrying the branch (580.x-1).
# - RPM (RHEL, Fedora): nvidia-fabric-manager (hyphenated, all branches), libnvidia-nscq-<branch> before R580,
#   libnvidia-nscq from R580. NOT VERIFIED in this session beyond NVIDIA's long-standing RPM name.
# - NVLSM (Blackwell HGX NVLink 5 switch trays): nvlsm. IMEX (GB200-class): nvidia-imex (nvidia-imex-<branch>
#   before R580 on Debian/Ubuntu).
FABRIC_NAMES_CHECKED = "2026-12-03"
UNSUFFIXED_FROM = 580
IMEX_FROM = 550

# host_facts' nvidia.fabric_service values (DESIGN.md wrote fabricmanager / fabricmanager+nvlsm; the fact came first).
FABRIC_SERVICES = ("none", "fabric_manager", "fabric_manager_nvlsm", "imex")
_BRANCH = re.compile(r"^[0-9]{3}$")
_VERSION = re.compile(r"^[0-9]{3}(\.[0-9]{1,3}){1,2}$")


def _branch(branch: t.Any) -> int:
    if not isinstance(branch, str) or not _BRANCH.fullmatch(branch):
        raise ModuleError(f"Fabric manager needs the driver's branch as three digits (for example 580), got {branch!r}.")
    return int(branch)


def fabric_wanted(option: t.Any, fabric_service: t.Any) -> str:
    """The fabric service to install: host_facts' fabric_service when option is auto, else what true/false say."""
    if fabric_service not in FABRIC_SERVICES:
        raise ModuleError(f"Unknown fabric_service {fabric_service!r}: host_facts reports one of {', '.join(FABRIC_SERVICES)}.")
    if option in ("auto", None):
        return fabric_service
    if isinstance(option, str):
        option = option.lower()
    if option in (True, "true", "yes"):
        return fabric_service if fabric_service != "none" else "fabric_manager"
    if option in (False, "false", "no"):
        return "none"
    raise ModuleError(f"fabric_manager must be auto, true or false, got {str(option)[:40]!r}.")


def fabric_packages(family: str, branch: t.Any, service: str, suffixed: bool | None = None) -> t.List[str]:
    """The packages (NVIDIA's names) a fabric service needs with a driver of this branch on this family.

    ``suffixed``: the names carry the branch (Ubuntu's own archive, every branch); None decides by the branch
    (NVIDIA's repository: suffixed before R580)."""
    if service == "none":
        return []
    number = _branch(branch)
    if suffixed is None:
        suffixed = number < UNSUFFIXED_FROM
    suffix = f"-{branch}" if suffixed else ""
    if family == "debian":
        fm = [f"nvidia-fabricmanager{suffix}", f"libnvidia-nscq{suffix}"]
    elif family == "redhat":
        fm = ["nvidia-fabric-manager", f"libnvidia-nscq{suffix}"]
    else:
        raise ModuleError(f"No fabric manager packages are known for the {family!r} family.")
    if service == "fabric_manager":
        return fm
    if service == "fabric_manager_nvlsm":
        if number < UNSUFFIXED_FROM:
            raise ModuleError(f"Blackwell HGX (NVLSM) needs driver branch {UNSUFFIXED_FROM} or later, not {branch}.")
        return fm + ["nvlsm"]
    if service == "imex":
        if number < IMEX_FROM:
            raise ModuleError(f"IMEX (GB200-class nodes) needs driver branch {IMEX_FROM} or later, not {branch}.")
        return ["nvidia-imex" if family == "redhat" else f"nvidia-imex{suffix}"]
    raise ModuleError(f"Unknown fabric service {service!r}.")


def fabric_units(service: str) -> t.List[str]:
    """The systemd units nvidia_driver enables for a fabric service. NVLSM has none of its own here: on fourth-generation
    NVSwitch systems fabric manager's service starts it (Fabric Manager guide, "Systems Using Fourth Generation
    NVSwitches", read 2026-12-03; not seen on hardware)."""
    return {"none": [], "fabric_manager": ["nvidia-fabricmanager.service"],
            "fabric_manager_nvlsm": ["nvidia-fabricmanager.service"], "imex": ["nvidia-imex.service"]}[service]


def fabric_versioned(packages: t.Sequence[str]) -> t.List[str]:
    """Those of ``packages`` built for one driver version, installed at exactly the driver's (NVLSM is not)."""
    return [p for p in packages if p != "nvlsm"]


DCGM_UNIT = "nvidia-dcgm.service"


def exact_version(family: str, version: t.Any) -> str:
    """The version spec fabric manager is installed at: exactly the driver's upstream version."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ModuleError(f"Fabric manager is installed at exactly the driver's version: {version!r} is not one (for example 580.95.05).")
    return f"{version}-1" if family == "debian" else version


# DCGM 4 (checked 2026-12-03): datacenter-gpu-manager-4-core plus datacenter-gpu-manager-4-cuda<major>, the CUDA
# major the driver supports: R525 to R575 report CUDA 12.x, R580 and later CUDA 13.x (CUDA 13.0 needs >= 580).
# DCGM 4's cuda11 flavour is not offered here (dropped from DCGM 4.3 on): older drivers are refused.
DCGM_CHECKED = "2026-12-03"


def cuda_major(branch: t.Any, reported: t.Any = None) -> int:
    """The driver's CUDA major: nvidia-smi's reported CUDA level when given, else from the branch."""
    if reported:
        match = re.match(r"^\s*([0-9]+)\.[0-9]+", str(reported))
        if not match:
            raise ModuleError(f"Cannot read a CUDA level from {reported!r} (nvidia-smi reports for example 13.0).")
        return int(match.group(1))
    number = _branch(branch)
    if number >= 580:
        return 13
    if number >= 525:
        return 12
    return 11


def dcgm_packages(branch: t.Any, reported: t.Any = None) -> t.List[str]:
    major = cuda_major(branch, reported)
    if major not in (12, 13):
        raise ModuleError(
            f"DCGM 4 is packaged for CUDA 12 and 13 drivers; driver branch {branch} reports CUDA {major}: "
            "set mlhost_dcgm false or use driver branch 525 or later."
        )
    return ["datacenter-gpu-manager-4-core", f"datacenter-gpu-manager-4-cuda{major}"]


# dcgmi diag output: DCGM 4's table (docs.nvidia.com/datacenter/dcgm, "Diagnostics" page), rows like
# "| Memory                    | Pass - All                                     |" or
# "| Diagnostic                | GPU0: Pass                                     |" with per-GPU continuation rows.
_ROW = re.compile(r"^\|\s*(?P<name>[^|]*?)\s*\|\s*(?P<value>[^|]*?)\s*\|\s*$")
_GPU = re.compile(r"GPU\s*([0-9]+)\s*:\s*(Pass|Fail|Skip|Warn)", re.I)
# "Pass - All" (DCGM 4) or a bare "Pass" (DCGM 3's rows without GPU lines): every GPU; GPU rows after it override.
_ALL = re.compile(r"^(Pass|Fail|Skip|Warn)(\s*-\s*All\b|\s*$)", re.I)
_SECTIONS = ("metadata", "deployment", "integration", "hardware", "stress", "plugins")


def parse_diag(output: str, gpus: t.Sequence[int]) -> t.Dict[str, t.Any]:
    """{"ok": bool, "gpus": {index: "pass"|"fail"|...}, "tests": {name: {...}}, "error": str|None} from dcgmi diag."""
    tests: t.Dict[str, t.Dict[int, str]] = {}
    listed: t.Set[str] = set()
    current = None
    for line in output.splitlines():
        row = _ROW.match(line.strip())
        if not row:
            continue
        name, value = row.group("name"), row.group("value")
        if name.lower().startswith("diagnostic") and value.lower().startswith("result"):
            continue
        if name and name.lower().split(" ")[0] in _SECTIONS and not value:
            continue
        if name:
            current = name
        if current is None or not value:
            continue
        everyone = _ALL.match(value)
        if everyone:
            tests.setdefault(current, {}).update({g: everyone.group(1).lower() for g in gpus})
            continue
        found = _GPU.findall(value)
        if found and current not in listed:
            # A test with GPU lines: only the GPUs it lists have a result (a GPU it leaves out has none).
            listed.add(current)
            tests[current] = {}
        for index, result in found:
            tests.setdefault(current, {})[int(index)] = result.lower()
    if not tests:
        return {"ok": False, "gpus": {}, "tests": {}, "error": "dcgmi diag printed no test results"}
    rank = {"skip": 0, "pass": 1, "warn": 2, "fail": 3}
    per_gpu: t.Dict[int, str] = {}
    for results in tests.values():
        for index, result in results.items():
            if rank[result] >= rank.get(per_gpu.get(index, "skip"), 0):
                per_gpu[index] = result
    missing = [g for g in gpus if g not in per_gpu]
    ok = not missing and all(r != "fail" for r in per_gpu.values())
    error = f"no result for GPU {', '.join(map(str, missing))}" if missing else None
    return {"ok": ok, "gpus": per_gpu, "tests": tests, "error": error}
