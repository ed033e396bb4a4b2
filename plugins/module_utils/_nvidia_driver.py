# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The nvidia_driver module's logic: plan the driver, check its source, then install, hold and configure.

PRIVATE to the collection: no compatibility promise outside it.

``Driver.plan()`` checks every option, reads the host (the distribution, one package
query, the source's candidates when something is missing, the persistence unit's
state) and returns the whole run as data: the source files to write, whether the
metadata is refreshed, the packages to unhold, install and hold, the nouveau
blacklist and the initramfs, the unit to enable. ``Driver.apply(plan)`` carries out
exactly those steps, in that order; check mode is the plan.
"""

from __future__ import annotations

import datetime
import fnmatch
import platform
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _distro, _gpu_services, _host, _kernel, _nvidia, _nvidia_repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, PackageManager, backend_for

BLACKLIST_FILE = "/etc/modprobe.d/mlhost-blacklist-nouveau.conf"
BLACKLIST = (
    _nvidia_repo.MANAGED
    + "# nouveau claims NVIDIA GPUs before the nvidia module can: keep it out, at boot and in the initramfs.\n"
    + "blacklist nouveau\noptions nouveau modeset=0\n"
).encode()
PERSISTENCE_UNIT = "nvidia-persistenced.service"
# unattended-upgrades: Package-Blacklist entries are regular expressions matched at the start of a package name
# (unattended-upgrades 0.70 and later); apt appends the items of a list given in several files, so this file adds
# to the administrator's list in 50unattended-upgrades instead of replacing it.
UNATTENDED_FILE = "/etc/apt/apt.conf.d/51mlhost-nvidia-no-unattended-upgrades"
UNATTENDED_PATTERNS = ("nvidia-", "libnvidia-", "libcuda", "cuda-", "firmware-nvidia-", "xserver-xorg-video-nvidia")
UNATTENDED = (
    "// Managed by mlinfra.mlhost: edits here are overwritten.\n"
    "// The NVIDIA driver, CUDA and fabric manager change only when the collection is asked to change them:\n"
    "// unattended-upgrades skips these (regular expressions, matched at the start of a package name).\n"
    "Unattended-Upgrade::Package-Blacklist {\n"
    + "".join(f'    "{pattern}";\n' for pattern in UNATTENDED_PATTERNS)
    + "};\n"
).encode()
ENABLED_STATES = ("enabled", "static", "alias", "indirect", "generated")
INITRAMFS_TOOLS = (["update-initramfs", "-u", "-k", "all"], ["dracut", "--force", "--regenerate-all"])
NOTHING = _nvidia_repo.NOTHING

# What the distributions carry (for messages and plans without package lists; the real check asks the package manager).
DISTRO_BRANCHES = {("debian", "12"): "535", ("debian", "13"): "550"}
# NVIDIA's open kernel modules exist from this branch on (R515, May 2022).
OPEN_MODULES_FROM = "515"
# From R590 NVIDIA's Debian/Ubuntu packages carry no branch in their names (NVIDIA Driver Installation Guide,
# "Recent updates"): a branch is held by installing nvidia-driver-pinning-<branch> (an apt preferences file,
# Pin: version <branch>.*) before the unversioned nvidia-open / cuda-drivers. Before R590 the branch metas
# (cuda-drivers-<b>, nvidia-open-<b>) name it; their components depend ">=" and reach newer branches, so the
# pinning package is installed first for those too where the repository carries it.
PINNING_FROM = 590

# Secure Boot: a DKMS-built module loads only when signed by a key the firmware trusts. DKMS (3.x on Debian and
# Ubuntu) signs with its Machine Owner Key pair, made on first use; Ubuntu's shim-signed keeps its own.
MOK_CERTIFICATES = ("/var/lib/dkms/mok.pub", "/var/lib/shim-signed/mok/MOK.der")


def mok_enrolled(output: str) -> bool | None:
    """``mokutil --test-key CERT``: True when it says the key is enrolled, False when not, None otherwise."""
    text = (output or "").lower()
    if "is already enrolled" in text:
        return True
    if "is not enrolled" in text:
        return False
    return None


# Globs of the packages that make up an installed driver (held together), per package manager.
APT_DRIVER_GLOBS = ["nvidia-*", "libnvidia-*", "libcuda1", "libcuda1-*", "xserver-xorg-video-nvidia*", "firmware-nvidia-*", "cuda-drivers*"]
RPM_DRIVER_GLOBS = ["nvidia-*", "kmod-nvidia*", "cuda-drivers*", "libnvidia-*", "xorg-x11-drv-nvidia*", "dkms-nvidia"]
DRIVER_GLOBS = {"apt": APT_DRIVER_GLOBS, "dnf": RPM_DRIVER_GLOBS}
# Packages a hold itself needs (dnf's versionlock plugin): installed with the driver, never held.
HOLD_TOOLS = {"dnf": ["python3-dnf-plugin-versionlock"]}

BRANCH = re.compile(r"[0-9]{3}")
VERSION = re.compile(r"[0-9]{3}\.[0-9]{1,4}(?:\.[0-9]{1,4})?")

Installed = t.Dict[str, t.Tuple[str, bool]]  # name -> (version, held), from PackageManager.installed_matching


class Layout(t.NamedTuple):
    """What the driver is made of on this host: the source, flavor and branch, the package names, the source files."""

    source: str
    source_reason: str
    flavor: str
    branch: str | None
    packages: list[str]          # to install (the driver's own and its companions)
    versioned: list[str]         # packages whose version is the driver's version
    headers: list[str]           # kernel headers for DKMS (optional in containers)
    module_stream: str | None    # dnf: nvidia-driver:<branch>-dkms|open
    pin: str | None              # apt, NVIDIA's repository: nvidia-driver-pinning-<branch>, installed before the driver
    pin_required: bool           # the branch has no other way to be held (R590 on)
    files: dict[str, bytes | None]  # repository/source files wanted
    key_fingerprints: list[str]     # of the repository key the files trust (NVIDIA's repository)
    fabric: str = "none"            # the fabric service installed with the driver (host_facts' fabric_service values)
    addons: tuple[str, ...] = ()    # fabric manager / NVLSM / IMEX / DCGM packages, in packages too
    units: tuple[str, ...] = ()     # their systemd units, enabled after the install


def branch_asked(params: dict[str, t.Any]) -> str | None:
    return params.get("branch") or (_compat.branch_of(params["version"]) if params.get("version") else None)


def check_options(params: dict[str, t.Any]) -> None:
    """Every option, as given: shapes, combinations, no NUL bytes. Reads nothing, runs nothing."""
    _nvidia_repo.check_plain_text(params, ("branch", "version"))
    branch = params.get("branch") or ""
    version = params.get("version") or ""
    if branch and not BRANCH.fullmatch(branch):
        raise ModuleError(f"branch {branch!r} is not a driver branch: give its three digits (0-9), for example 550. {NOTHING}")
    if version:
        if not VERSION.fullmatch(version):
            raise ModuleError(f"version {version!r} is not a driver version: give it in full (digits 0-9), for example 550.163.01. {NOTHING}")
        if branch and _compat.branch_of(version) != branch:
            raise ModuleError(f"version {version} is not on branch {branch}: drop one, or make them agree. {NOTHING}")
    asked = branch_asked(params)
    if params.get("flavor") == "open" and asked and int(asked) < int(OPEN_MODULES_FROM):
        raise ModuleError(
            f"flavor open on branch {asked}: NVIDIA's open kernel modules start with branch {OPEN_MODULES_FROM}, so branch {asked} "
            f"has none. Set flavor: proprietary (or auto), or ask for branch {OPEN_MODULES_FROM} or newer. {NOTHING}"
        )
    try:
        _gpu_services.fabric_wanted(params.get("fabric_manager", "auto"), "none")
    except ModuleError as exc:
        raise ModuleError(f"{exc.msg} {NOTHING}") from exc
    _nvidia_repo.check_repo_options(params)
    _nvidia_repo.check_package_options(params)
    _kernel.check_key_options(params)


def distro_name(distro: dict[str, t.Any]) -> str:
    return distro.get("name") or " ".join(str(v) for v in (distro.get("id"), distro.get("version")) if v) or "this host"


def pick_source(params: dict[str, t.Any], distro: dict[str, t.Any]) -> tuple[str, str]:
    """(source, why): the source asked, or for auto the distribution's when it carries the branch asked."""
    source = params["source"]
    if source != "auto":
        return source, f"source: {source} was set"
    name = distro_name(distro)
    wanted = branch_asked(params)
    carried = DISTRO_BRANCHES.get((distro.get("id"), distro.get("major")))
    if distro.get("id") == "ubuntu":
        return "distro", f"{name} packages the NVIDIA driver branches itself"
    if distro.get("id") == "debian":
        if not wanted:
            return "distro", f"no branch was asked and {name} carries the driver" + (f" (branch {carried})" if carried else "")
        if wanted == carried:
            return "distro", f"{name} carries branch {carried}, the branch asked"
        if carried:
            return "nvidia_repo", f"{name} carries only driver branch {carried} and branch {wanted} was asked"
        return "nvidia_repo", f"{name}'s own driver branch is not known here and branch {wanted} was asked"
    return "nvidia_repo", f"{name} has no NVIDIA driver in its own repositories"


# The GPUs a branch and a flavor can drive (NVIDIA's driver release notes and deprecation notices, checked
# 2026-12-02): R590 dropped Maxwell, Pascal and Volta, so R580 (long-term support to 2028-06) is their last
# branch; the open kernel modules run Turing and newer only; Blackwell runs on the open modules only.
LEGACY_ARCHITECTURES = ("maxwell", "pascal", "volta")
LAST_LEGACY_BRANCH = "580"
BEFORE_TURING = ("kepler", "maxwell", "pascal", "volta")
OPEN_ONLY = ("blackwell",)


def gpu_names(gpus: list[dict[str, t.Any]], architectures: t.Iterable[str]) -> str:
    wanted = set(architectures)
    names = sorted({f"{g['name']} ({g['architecture']}, {g['pci']})" for g in gpus if g.get("architecture") in wanted})
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def pick_flavor(flavor: str, branch: str | None, gpus: list[dict[str, t.Any]] | None = None) -> str:
    """The flavor for the host's GPUs: auto takes open for Blackwell, proprietary before Turing, and else the open
    modules from branch 560 on (NVIDIA's default since then). A flavor or branch the GPUs cannot run is refused."""
    gpus = gpus or []
    archs = {g.get("architecture") for g in gpus}
    old, new = archs & set(BEFORE_TURING), archs & set(OPEN_ONLY)
    if branch and int(branch) > int(LAST_LEGACY_BRANCH) and archs & set(LEGACY_ARCHITECTURES):
        raise ModuleError(
            f"Driver branch {branch} does not support this host's {gpu_names(gpus, LEGACY_ARCHITECTURES)}: NVIDIA dropped "
            f"Maxwell, Pascal and Volta after R{LAST_LEGACY_BRANCH}. Ask for branch {LAST_LEGACY_BRANCH} (long-term support), "
            f"the last that drives them. {NOTHING}"
        )
    if old and new:
        raise ModuleError(
            f"This host mixes GPUs older than Turing ({gpu_names(gpus, BEFORE_TURING)}), which need the proprietary kernel "
            f"modules, with Blackwell GPUs ({gpu_names(gpus, OPEN_ONLY)}), which need the open ones: no one driver flavor "
            f"runs both. Move one kind to another host. {NOTHING}"
        )
    if flavor == "open" and old:
        raise ModuleError(
            f"flavor open cannot drive this host's {gpu_names(gpus, BEFORE_TURING)}: NVIDIA's open kernel modules run Turing "
            f"and newer GPUs only. Set flavor: proprietary (or auto). {NOTHING}"
        )
    if flavor == "proprietary" and new:
        raise ModuleError(
            f"flavor proprietary cannot drive this host's {gpu_names(gpus, OPEN_ONLY)}: Blackwell GPUs run on NVIDIA's open "
            f"kernel modules only. Set flavor: open (or auto). {NOTHING}"
        )
    if flavor != "auto":
        return flavor
    if new:
        return "open"
    if old:
        return "proprietary"
    return "open" if branch and int(branch) >= 560 else "proprietary"


def driver_packages(distro: dict[str, t.Any], source: str, flavor: str, branch: str | None, kernel: str,
                    server: bool = True) -> tuple[list[str], list[str], str | None]:
    """(packages, versioned packages, dnf module stream) for a distro, source, flavor and branch."""
    distro_id = distro.get("id")
    family = distro.get("family")
    is_open = flavor == "open"
    if source == "distro":
        if distro_id == "debian":
            kernel_pkg = "nvidia-open-kernel-dkms" if is_open else "nvidia-kernel-dkms"
            return ["nvidia-driver", kernel_pkg, "nvidia-smi", "nvidia-persistenced"], ["nvidia-driver", kernel_pkg, "nvidia-smi"], None
        if distro_id == "ubuntu":
            if not branch:
                raise ModuleError("Ubuntu names its drivers by branch: set branch (for example 550).")
            suffix = ("-server" if server else "") + ("-open" if is_open else "")
            driver = f"nvidia-driver-{branch}{suffix}"
            return [driver, f"nvidia-utils-{branch}{'-server' if server else ''}"], [driver], None
        raise ModuleError(
            f"{distro.get('name') or distro_id} does not ship the NVIDIA driver in its own repositories: use source: nvidia_repo."
        )
    # NVIDIA's CUDA repository
    if family == "debian" and branch and int(branch) >= PINNING_FROM:
        name = "nvidia-open" if is_open else "cuda-drivers"
        return [name], [name], None
    if family == "debian":
        if is_open:
            name = f"nvidia-open-{branch}" if branch else "nvidia-open"
        else:
            name = f"cuda-drivers-{branch}" if branch else "cuda-drivers"
        return [name], [name], None
    if family == "redhat":
        if modular(distro):
            # The components themselves (one version each), so that a version spec holds every one of them.
            kmod = "kmod-nvidia-open-dkms" if is_open else "kmod-nvidia-latest-dkms"
            names = ["nvidia-driver", "nvidia-driver-cuda", kmod]
            return names, list(names), f"{DNF_MODULE}:{dnf_stream(branch, is_open)}"
        # RHEL 10 and Fedora: no module streams; NVIDIA's metas, held by version (see RPM_BRANCHES_CHECKED).
        name = "nvidia-open" if is_open else "cuda-drivers"
        return [name], [name], None
    raise ModuleError(f"No NVIDIA driver packages are known for {distro.get('name') or distro_id}.")


# NVIDIA's RPM repositories (checked 2026-12-03; docs/nvidia-repositories.md lists the sources):
# - RHEL 8 and 9 (and their rebuilds) get the dnf module nvidia-driver: NVIDIA's genmodules.py
#   (github.com/NVIDIA/cuda-repo-management, github.com/NVIDIA/yum-packaging-precompiled-kmod) makes the streams
#   <b>, <b>-dkms and <b>-open (after R510) for every branch whose nvidia-driver RPMs are in the repository, plus
#   latest, latest-dkms and open-dkms; the Driver Installation Guide (R620 edition, "Kernel Modules") installs a
#   branch with "dnf module enable nvidia-driver:580-open" then "dnf install nvidia-open". Up to which branch NVIDIA
#   still publishes streams was NOT FOUND: user reports list rhel9 streams up to 580 (yum-packaging-precompiled-kmod
#   issue 63, 2025-10) and rhel9 packages of 595 (issue 68, 2026-05), no stream list past 580. So the stream is used
#   only when "dnf module list nvidia-driver" offers it, never assumed.
# - RHEL 10 and Fedora are not modular: the guide installs nvidia-open (open modules) or cuda-drivers (proprietary)
#   and holds a branch with "dnf versionlock" of the branch's packages (its "Version locking" page, DNF 4 and DNF 5).
# - nvidia-driver-pinning-<b> on RPM distributions: NOT FOUND (the R590 guide's "Recent updates" gives it for
#   Ubuntu and Debian only). It is installed where the repository offers it (dnf repoquery), never assumed.
# Without a stream (or a pinning package) the newest version of the branch the repository offers is installed by
# its exact version and versionlocked; a repository with nothing of the branch is refused, naming what it offers.
RPM_BRANCHES_CHECKED = "2026-12-03"
DNF_MODULE = "nvidia-driver"


def modular(distro: dict[str, t.Any]) -> bool:
    """RHEL 8 and 9 and their rebuilds: NVIDIA's repository may carry the nvidia-driver module streams there."""
    return distro.get("family") == "redhat" and distro.get("id") != "fedora" and distro.get("major") in ("8", "9")


def dnf_stream(branch: str | None, is_open: bool) -> str:
    """The nvidia-driver stream of a branch and flavor: '580-open', '580-dkms'; without a branch 'open-dkms' or
    'latest-dkms' (the newest driver, DKMS-built)."""
    if branch:
        return f"{branch}-{'open' if is_open else 'dkms'}"
    return "open-dkms" if is_open else "latest-dkms"


def addon_packages(params: dict[str, t.Any], distro: dict[str, t.Any], source: str, branch: str | None,
                   root: t.Any, gpus: list[dict[str, t.Any]]) -> tuple[str, list[str], list[str], list[str]]:
    """(fabric service, its packages, DCGM's packages, the units to enable) for this host: the fabric service from the
    PCI bus (host_facts' rules) when fabric_manager is auto, and DCGM for the driver's CUDA major when dcgm is set."""
    if params["state"] != "present":
        return "none", [], [], []
    detected = _nvidia.fabric_facts(root, gpus)["fabric_service"]
    fabric = _gpu_services.fabric_wanted(params.get("fabric_manager", "auto"), detected)
    name = distro_name(distro)
    # Without a branch asked, NVIDIA's repository gives its newest driver: unsuffixed names, CUDA 13.
    named = branch or str(PINNING_FROM)
    # Debian's (and any other distribution's) own archive carries neither; Ubuntu's carries both.
    archive_lacks = source == "distro" and distro.get("id") != "ubuntu"
    fabric_pkgs: list[str] = []
    if fabric != "none":
        why = f"host_facts' fabric_service for this PCI bus is {detected}" if detected == fabric else "fabric_manager is true"
        if archive_lacks:
            raise ModuleError(
                f"This host needs {fabric} ({why}), and {name}'s own archive carries no NVIDIA fabric manager: use source: "
                "nvidia_repo (NVIDIA's CUDA repository, or repo_url for a mirror), which carries it at every driver version, or "
                f"set fabric_manager: false if the node does not need it. {NOTHING}"
            )
        fabric_pkgs = _gpu_services.fabric_packages(distro.get("family") or "", named, fabric,
                                                    suffixed=True if source == "distro" else None)
    dcgm: list[str] = []
    if params.get("dcgm"):
        if archive_lacks:
            raise ModuleError(
                f"dcgm: DCGM is in NVIDIA's CUDA repository, not in {name}'s own archive: use source: nvidia_repo (or repo_url "
                f"for a mirror), or set dcgm: false. {NOTHING}"
            )
        dcgm = _gpu_services.dcgm_packages(named)
    units = _gpu_services.fabric_units(fabric) + ([_gpu_services.DCGM_UNIT] if dcgm else [])
    return fabric, fabric_pkgs, dcgm, units


def header_packages(distro: dict[str, t.Any], kernel: str) -> list[str]:
    if distro.get("family") == "debian":
        return [f"linux-headers-{kernel}"]
    if distro.get("family") == "redhat":
        return [f"kernel-devel-{kernel}", f"kernel-headers-{kernel}"]
    return []


def make_layout(params: dict[str, t.Any], root: t.Any, distro: dict[str, t.Any], pm: PackageManager,
                key_fetch: t.Callable[[str], bytes], kernel: str | None = None) -> Layout:
    """The driver's packages and source files for this host (reads the host's files and the key; runs no command)."""
    source, reason = pick_source(params, distro)
    branch = branch_asked(params)
    carried = DISTRO_BRANCHES.get((distro.get("id"), distro.get("major")))
    if source == "distro" and branch and distro.get("id") == "debian" and carried and branch != carried:
        raise ModuleError(
            f"{distro.get('name') or 'Debian'} carries only the {carried} driver branch; branch {branch} is not available "
            "from source: distro. Use source: nvidia_repo (NVIDIA's CUDA repository, or repo_url for a mirror) for "
            f"branch {branch}, or ask for branch {carried}. {NOTHING}"
        )
    gpus = _nvidia.pci_gpus(root) if params["state"] == "present" else []
    flavor = pick_flavor(params["flavor"], branch or carried, gpus)
    kernel = kernel or platform.release()
    packages, versioned, stream = driver_packages(distro, source, flavor, branch, kernel, params.get("server_packages", True))
    fabric, fabric_pkgs, dcgm, units = addon_packages(params, distro, source, branch or (carried if source == "distro" else None),
                                                      root, gpus)
    # Fabric manager (and IMEX) is built for one driver version: it joins the versioned packages, whose candidates must
    # agree, and is installed, held and upgraded in the driver's transaction.
    packages = packages + fabric_pkgs + dcgm
    versioned = versioned + _gpu_services.fabric_versioned(fabric_pkgs)
    if params["hold"]:
        packages = packages + HOLD_TOOLS.get(pm.name, [])
    files: dict[str, bytes | None] = {}
    fingerprints: list[str] = []
    if params["state"] == "present":
        files, fingerprints = _nvidia_repo.source_files(params, distro, source, pm.name, root, key_fetch, reason)
    headers = header_packages(distro, kernel) if params["kernel_headers"] else []
    pin = f"nvidia-driver-pinning-{branch}" if source == "nvidia_repo" and distro.get("family") == "debian" and branch else None
    pin_required = bool(pin and int(branch or 0) >= PINNING_FROM)
    return Layout(source, reason, flavor, branch, packages, versioned, headers, stream, pin, pin_required, files, fingerprints,
                  fabric, tuple(fabric_pkgs + dcgm), tuple(units))


# Reading the installed driver -------------------------------------------------------


def installed_set(pm: PackageManager, extra: t.Sequence[str] = (), holds: bool = False) -> Installed:
    """name -> (version, held) of the installed NVIDIA driver packages and of ``extra``, in one query."""
    return pm.installed_matching(DRIVER_GLOBS.get(pm.name, []) + list(extra), holds=holds)


def driver_version_of(packages: Installed) -> str | None:
    version, dummy = _nvidia.installed_driver({n: v[0] for n, v in packages.items()})
    return version


def upstream_of(version: str | None) -> str | None:
    """The driver version in a package version ('1:590.48.01-1' -> '590.48.01'), or None."""
    return _nvidia.upstream_version(version.split(":", 1)[-1]) if version else None


def members(packages: Installed, driver: str | None, wanted: list[str]) -> list[str]:
    """The installed packages that belong to the driver: those of its version, and those asked for."""
    chosen = []
    for name, (version, dummy) in sorted(packages.items()):
        upstream = upstream_of(version)
        if name in wanted or (driver and upstream == driver):
            chosen.append(name)
    return chosen


def package_failure(exc: PackageError) -> ModuleError:
    """A package layer failure as the module's error, with the command's output."""
    result = getattr(exc, "result", None)
    return ModuleError(getattr(exc, "msg", str(exc)), rc=getattr(result, "rc", None), stdout=getattr(result, "out", None),
                       stderr=getattr(result, "err", None), cmd=getattr(exc, "cmd", None))


# The packages whose names carry a driver branch in NVIDIA's repositories: the pinning packages (R590 on), the
# branch metas before them (apt), and the dnf module's branch packages.
BRANCH_PACKAGE_PREFIXES = ("nvidia-driver-pinning-", "cuda-drivers-", "nvidia-open-")


def offered_branches(pm: PackageManager) -> list[str]:
    """The driver branches the configured sources offer, read from the names of their branch packages (oldest first);
    [] when the package lists cannot be read."""
    branches: set[str] = set()
    for prefix in BRANCH_PACKAGE_PREFIXES:
        for name in pm.offered(prefix):
            tail = name[len(prefix):]
            if re.fullmatch(r"[0-9]{3}", tail):
                branches.add(tail)
    return sorted(branches)


def offered_note(pm: PackageManager) -> str:
    """'; it offers branches 580, 590' (empty when unknown), for the refusals."""
    try:
        branches = offered_branches(pm)
    except PackageError:
        return ""
    return f"; it offers driver branch{'es' if len(branches) > 1 else ''} {', '.join(branches)}" if branches else ""


def check_candidates(pm: PackageManager, layout: Layout, missing: list[str], params: dict[str, t.Any], distro: dict[str, t.Any],
                     in_container: bool, warnings: list[str], pin_pending: bool = False,
                     version_chosen: bool = False) -> tuple[list[str], dict[str, str | None]]:
    """Refuse a source that lacks a package, carries another branch or mismatched versions.

    ``pin_pending``: the branch's pinning package is still to be installed, so the driver's candidates are the
    unpinned ones and their branch is checked once the pin is in place. ``version_chosen``: the driver is installed
    by an exact version picked on the branch (dnf), so the newest candidates' branch and versions are not the ones
    installed and are not checked. Returns (packages to skip: headers a container lacks, a pinning package a pre-R590
    repository lacks; the candidates asked)."""
    asked = [p for p in layout.packages if p in missing] + [h for h in layout.headers if h in missing]
    if pin_pending and layout.pin:
        asked.append(layout.pin)
    candidates = pm.candidates(asked + [p for p in layout.versioned if p not in asked])
    pin_skip: list[str] = []
    if pin_pending and layout.pin and candidates.get(layout.pin) is None:
        if layout.pin_required:
            raise ModuleError(
                f"NVIDIA's repository (or the mirror) has no {layout.pin}: from R{PINNING_FROM} the driver packages carry no "
                f"branch in their names, and {layout.pin} is what holds apt to branch {layout.branch}. Mirror it with the "
                f"driver packages, or leave branch empty to take the newest driver{offered_note(pm)}. Nothing was installed."
            )
        pin_skip = [layout.pin]
        pin_pending = False  # nothing will pin: the candidates seen now are the ones apt takes
    elif pin_pending and layout.pin:
        warnings.append(f"{layout.pin} is installed first; the driver's candidates are then checked to be on branch "
                        f"{layout.branch} before the driver is installed.")
    absent = [p for p in layout.packages if candidates.get(p) is None and p in missing]
    if absent:
        hint = ""
        if layout.source == "distro" and distro.get("id") == "debian":
            hint = " Debian carries the driver in non-free (and contrib for the open kernel modules): check that those sources are reachable."
        if layout.source == "nvidia_repo":
            raise ModuleError(
                f"NVIDIA's repository (or the mirror) has no {', '.join(absent)} for this host{offered_note(pm)}. Ask for a "
                "branch it carries, or point repo_url at a mirror that carries this one. Nothing was installed."
            )
        raise ModuleError(
            f"The {layout.source} source has no {', '.join(absent)} for this host.{hint} Set source: nvidia_repo (or "
            "repo_url for a mirror) for other branches. Nothing was installed."
        )
    upstream = {} if version_chosen else {p: _nvidia.upstream_version(candidates[p] or "") for p in layout.versioned if candidates.get(p)}
    branches = {p: v.split(".")[0] for p, v in upstream.items() if v}
    wrong = {p: upstream[p] for p, b in branches.items() if b != layout.branch} if layout.branch else {}
    if wrong and layout.source == "distro":
        offered = sorted(set(wrong.values()))[0]
        raise ModuleError(
            f"The distribution offers driver {offered} (branch {offered.split('.')[0]}), not branch {layout.branch}. "
            f"Use source: nvidia_repo for branch {layout.branch}, or ask for branch {offered.split('.')[0]}. Nothing was installed."
        )
    if wrong and layout.source == "nvidia_repo" and not pin_pending:
        refuse_out_of_branch(layout, wrong, "would take", bool(layout.pin) and not pin_skip)
    distinct = sorted(set(v for v in upstream.values() if v))
    if len(distinct) > 1:
        listing = ", ".join(f"{p} {upstream[p]}" for p in layout.versioned if p in upstream)
        raise ModuleError(
            f"The {layout.source} source offers mismatched versions for the {layout.flavor} driver ({listing}): they would not "
            "install together. "
            + ("Use flavor: proprietary, or source: nvidia_repo. " if layout.flavor == "open" else "Retry after the mirror has synced. ")
            + "Nothing was installed."
        )
    version = params.get("version")
    if version and distinct and distinct[0] != version:
        raise ModuleError(
            f"The {layout.source} source offers driver {distinct[0]}, not version {version}. Leave version empty to take "
            f"{distinct[0]}, or point repo_url at a mirror that carries {version}. Nothing was installed."
        )
    skip = [h for h in layout.headers if h in missing and candidates.get(h) is None]
    if skip:
        if in_container:
            warnings.append(
                f"Kernel headers {', '.join(skip)} are not in the sources; skipped in this container (no module is built in a "
                "container: the host's kernel loads the driver)."
            )
        else:
            raise ModuleError(
                f"The headers for the running kernel ({', '.join(skip)}) are not in the sources, so DKMS cannot build the "
                "module: upgrade the kernel package, reboot into it, then rerun (or set kernel_headers: false when modules "
                "come prebuilt). Nothing was installed."
            )
    return skip + pin_skip, candidates


def version_key(version: str) -> tuple[int, ...]:
    """'590.48.01' -> (590, 48, 1), for ordering driver versions."""
    return tuple(int(part) for part in version.split("."))


def release_key(evr: str) -> tuple[tuple[int, ...], str]:
    """An ordering of the releases of one upstream version ('3:590.48.01-2.el9' after '3:590.48.01-1.el9')."""
    release = evr.rsplit("-", 1)[-1]
    return tuple(int(n) for n in re.findall(r"[0-9]+", release)), release


def pick_branch_version(versions: dict[str, list[str]], names: list[str], branch: str,
                        version: str | None = None) -> dict[str, str] | None:
    """name -> 'version-release' (no epoch, as a dnf spec takes it) of the newest driver version on ``branch`` (or
    exactly ``version``) that every one of ``names`` offers; None when there is none."""
    per_name: dict[str, dict[str, str]] = {}
    for name in names:
        offered: dict[str, str] = {}
        for evr in versions.get(name, []):
            upstream = _nvidia.upstream_version(evr)
            if not upstream or not VERSION.fullmatch(upstream) or upstream.split(".")[0] != branch:
                continue
            if version and upstream != version:
                continue
            if upstream not in offered or release_key(evr) > release_key(offered[upstream]):
                offered[upstream] = evr
        per_name[name] = offered
    common = set.intersection(*(set(v) for v in per_name.values())) if per_name else set()
    if not common:
        return None
    newest = max(common, key=version_key)
    return {name: per_name[name][newest].split(":", 1)[-1] for name in names}


def offered_listing(versions: dict[str, list[str]], names: list[str]) -> str:
    """'nvidia-open 595.45.04, 595.71.05' (the upstream versions each name offers, newest last), for the refusals."""
    parts = []
    for name in names:
        ups = sorted({u for u in (_nvidia.upstream_version(v) for v in versions.get(name, [])) if u and VERSION.fullmatch(u)},
                     key=version_key)
        shown = ups if len(ups) <= 6 else ups[:2] + ["..."] + ups[-3:]
        parts.append(f"{name} {', '.join(shown) if shown else 'no version'}")
    return "; ".join(parts)


def dnf_out_of_branch(simulated: dict[str, str], branch: str) -> dict[str, str]:
    """The NVIDIA driver packages (RPM_DRIVER_GLOBS, with a driver-shaped version) of a simulated dnf install that are
    not on ``branch``."""
    wrong = {}
    for name, evr in simulated.items():
        upstream = upstream_of(evr)
        if (upstream and VERSION.fullmatch(upstream) and upstream.split(".")[0] != branch
                and any(fnmatch.fnmatchcase(name, glob) for glob in RPM_DRIVER_GLOBS)):
            wrong[name] = upstream
    return wrong


def dnf_branch_action(layout: Layout, distro: dict[str, t.Any], hold: bool) -> str:
    """The plan's words for the dnf branch step."""
    pin = f"nvidia-driver-pinning-{layout.branch}"
    if not layout.branch:
        return (f"enable dnf module stream {layout.module_stream} where the repository has it, then check that the source "
                "carries the driver")
    lock = "versionlocked" if hold else "not versionlocked: hold is false"
    exact = f"the newest {layout.branch} version it offers, by its exact version ({lock})"
    if layout.module_stream:
        how = (f"enable dnf module stream {layout.module_stream} where the repository has it, else install {pin} where it "
               f"has that; then install {exact}")
    else:
        how = (f"no module streams on {distro_name(distro)}: install {pin} where the repository has it; then install "
               f"{exact}")
    return f"hold dnf to branch {layout.branch}: {how}, after checking that the packages dnf would install are on the branch"


def hold_dnf_branch(pm: PackageManager, layout: Layout, params: dict[str, t.Any], distro: dict[str, t.Any], missing: list[str],
                    then: list[str], in_container: bool, warnings: list[str]) -> tuple[list[str], dict[str, str]]:
    """dnf, once the package lists are fresh: hold the branch the way the repository allows (its module stream on
    RHEL 8 and 9, else its pinning package, else the exact version, versionlocked after the install), then check
    that what dnf would install is on the branch. Returns (packages to skip, name -> install spec)."""
    branch = layout.branch
    how = ""
    streams: set[str] = set()
    if layout.module_stream:
        module, stream = layout.module_stream.split(":", 1)
        streams = pm.module_streams(module)
        if stream in streams:
            pm.enable_module_stream(layout.module_stream)
            how = f"module stream {layout.module_stream} (enabled; 'dnf module reset {module}' undoes it)"
        else:
            enabled = pm.enabled_streams(module) if streams else set()
            if enabled:
                # An enabled stream (an older branch's) hides the packages of the same names outside it.
                pm.reset_module(module)
                warnings.append(f"dnf module {module} was reset (it had {', '.join(sorted(enabled))} enabled): the repository "
                                f"has no stream {stream}, and an enabled stream hides the packages outside it.")
            if not branch:
                warnings.append(f"NVIDIA's repository (or the mirror) has no dnf module stream {layout.module_stream}: the "
                                "newest driver is installed without one.")
    if not branch:
        skip, dummy = check_candidates(pm, layout, missing, params, distro, in_container, warnings)
        return skip, {}
    pin = f"nvidia-driver-pinning-{branch}"
    if not how and pm.candidates([pin]).get(pin):
        pm.install([pin])
        how = f"{pin} (installed)"
    if not how:
        how = "its exact version" + (", versionlocked after the install" if params["hold"] else "")
        if not params["hold"]:
            warnings.append(f"hold is false and the repository offers no module stream or {pin} for branch {branch}: nothing "
                            f"keeps dnf on branch {branch} after this install.")
    skip, dummy = check_candidates(pm, layout, missing, params, distro, in_container, warnings, version_chosen=True)
    versions = pm.versions(layout.versioned)
    chosen = pick_branch_version(versions, layout.versioned, branch, params.get("version") or None)
    if chosen is None:
        asked = f"version {params['version']}" if params.get("version") else f"anything of branch {branch}"
        ups = {u for v in versions.get(layout.versioned[0], []) for u in [_nvidia.upstream_version(v)] if u and VERSION.fullmatch(u)}
        branches = sorted({u.split(".")[0] for u in ups})
        raise ModuleError(
            f"NVIDIA's repository (or the mirror) offers {offered_listing(versions, layout.versioned)}, not {asked} "
            f"(held by {how}). Set branch to one it offers{' (' + ', '.join(branches) + ')' if branches else ''}, or version "
            f"to one listed, or leave both empty for the newest; or point repo_url at a mirror that carries branch {branch}. "
            + (f"A default {DNF_MODULE} stream hides the packages outside it: 'dnf module disable {DNF_MODULE}' shows them. "
               if streams and not how.startswith("module stream") else "")
            + "Nothing was installed."
        )
    specs = {name: f"{name}-{vr}" for name, vr in chosen.items()}
    upstream = _nvidia.upstream_version(chosen[layout.versioned[0]]) or ""
    names = [n for n in then if n not in skip]
    simulated = pm.simulate([specs.get(n, n) for n in names]) or {}
    wrong = dnf_out_of_branch(simulated, branch)
    if wrong:
        # NVIDIA's RPM metas require their components '>=' (seen with real dnf, tests/unit/fixtures/dnf/README.md):
        # the components the meta would pull from a newer branch are named too, at the driver's version.
        more = pick_branch_version(pm.versions(sorted(wrong)), sorted(wrong), branch, upstream)
        if more:
            specs.update({name: f"{name}-{vr}" for name, vr in more.items()})
            simulated = pm.simulate([specs.get(n, n) for n in names] + [specs[n] for n in sorted(more) if n not in names]) or {}
            wrong = dnf_out_of_branch(simulated, branch)
    if wrong:
        listing = ", ".join(f"{p} {v}" for p, v in sorted(wrong.items()))
        raise ModuleError(
            f"dnf would install driver packages outside branch {branch} ({listing}) with {', '.join(sorted(specs.values()))} "
            f"(held by {how}), and the repository has no {upstream} of them: the driver's dependencies reach a newer branch. "
            "Point repo_url at a mirror that carries the whole branch, or ask for the branch offered. Nothing was installed."
        )
    return skip, specs


def refuse_out_of_branch(layout: Layout, wrong: dict[str, str], verb: str, pinned: bool) -> t.NoReturn:
    """``pinned``: the branch's pinning package is (or is about to be) installed."""
    listing = ", ".join(f"{p} {v}" for p, v in sorted(wrong.items()))
    pin = (f"{layout.pin} is installed and should keep apt on the branch: check /etc/apt/preferences.d for a pin of "
           "higher priority" if pinned else
           f"the repository has no {layout.pin or 'pinning package'} to hold apt to the branch: mirror it, or ask for the "
           "branch offered")
    raise ModuleError(
        f"NVIDIA's repository {verb} driver packages outside branch {layout.branch} ({listing}): the branch's metas "
        f"depend '>=' on components that reach newer branches, and {pin}. Nothing was installed."
    )


def refuse_unmatched_addons(layout: Layout, simulated: dict[str, str], driver: str | None) -> None:
    """Fabric manager (and IMEX) runs only at exactly the driver's version: refuse a transaction that would bring another."""
    if not driver:
        return
    wrong = {n: v for n, v in simulated.items() if n in layout.addons and n in layout.versioned and upstream_of(v) != driver}
    if wrong:
        listing = ", ".join(f"{n} {v}" for n, v in sorted(wrong.items()))
        raise ModuleError(
            f"The install would bring {listing} with driver {driver}: fabric manager (and IMEX) runs only at exactly the driver's "
            f"version, and CUDA fails on NVSwitch nodes otherwise. Have the repository (or mirror) carry them at {driver}, or "
            f"ask for the driver version it carries them at. {NOTHING}"
        )


def beside_loaded_driver(root: t.Any, installing: str | None) -> bool:
    """The driver to be installed is the loaded one, so the fabric and DCGM units can start now (else the reboot starts
    them: fabric manager at another version than the loaded driver does not start)."""
    loaded, dummy = _nvidia.loaded_driver(root)
    return bool(loaded and installing and loaded == installing)


def out_of_branch(simulated: dict[str, str], branch: str | None) -> dict[str, str]:
    """The driver packages (by name) of a simulated install whose upstream version is not on ``branch``."""
    if not branch:
        return {}
    wrong = {}
    for name, version in simulated.items():
        upstream = upstream_of(version)
        if upstream and _nvidia.is_driver_package(name) and upstream.split(".")[0] != branch:
            wrong[name] = upstream
    return wrong


# The worker --------------------------------------------------------------------------


class Driver(Worker):
    """plan(): the whole run as steps; apply(plan): those steps, in order."""

    today: str | None = None  # tests pin the date of the end-of-life check
    kernel: str | None = None  # tests pin the running kernel

    def __init__(self, host: t.Any) -> None:
        super().__init__(host)
        self.root = host.sysroot
        self.files = _nvidia_repo.FileSet(self.root.root)
        self.warnings: list[str] = []
        self.skipped: list[str] = []  # headers the source lacks, found when the check waits for the refresh
        self.pin_pending = False  # the branch's pinning package is to be installed before the driver
        self.specs: dict[str, str] = {}  # dnf: name -> the exact version to install ('nvidia-open-590.48.01-1.el10')
        self.unheld: list[str] = []  # what a branch change unheld, held again when the dnf branch step refuses
        self.secure_boot = "unknown"  # read when an install is planned
        self.kernel_holds: dict[str, t.Any] = {"wanted": [], "held": [], "hold": [], "release": [], "admin_held": []}
        self.kernel_modules, self.kernel_modules_reason = "dkms", ""
        self.not_held: list[str] = []  # packages of the driver that follow the kernel (precompiled modules), never held with it
        self.addon_specs: dict[str, str] = {}  # fabric manager added to an installed driver: name -> name at its exact version
        self.version_chosen = False  # the install names exact versions, so the newest candidates' versions are not checked

    def _fetch(self, url: str) -> bytes:
        return self.host.fetch(url).read()

    # Planning ----------------------------------------------------------------------
    def plan(self) -> Plan:
        params = self.params
        check_options(params)
        distro = _distro.distro_facts(self.root)
        pm = backend_for(params["pkg_mgr"], distro, self.root, self.runner, params["lock_timeout"], False, "nvidia_driver")
        layout = make_layout(params, self.root, distro, pm, self._fetch, self.kernel)
        try:
            layout = self._pick_kernel_modules(pm, layout, distro)
        except PackageError as exc:
            raise package_failure(exc) from exc
        self.pm, self.layout, self.distro = pm, layout, distro
        try:
            if params["state"] == "absent":
                steps, after, installing = self._plan_absent(pm, layout)
            else:
                steps, after, installing = self._plan_present(pm, layout, distro)
        except PackageError as exc:
            raise package_failure(exc) from exc
        result = {"pkg_mgr": pm.name, "source": layout.source, "source_reason": layout.source_reason, "flavor": layout.flavor,
                  "branch": layout.branch, "repo_key_fingerprints": layout.key_fingerprints, "secure_boot": self.secure_boot,
                  "kernel_holds": self.kernel_holds, "kernel_modules": self.kernel_modules,
                  "kernel_modules_reason": self.kernel_modules_reason, "fabric_service": layout.fabric,
                  "addon_packages": list(layout.addons), "services": list(layout.units)}
        result.update(self._report(layout, after, installing, distro))
        result["actions"] = [step["action"] for step in steps]
        diff = [c.diff() for step in steps for c in step.get("changes", [])] + [d for step in steps for d in step.get("diffs", [])]
        return Plan(changed=bool(steps), result=result, diff=diff or None, steps=steps, warnings=self.warnings)

    def _plan_present(self, pm: PackageManager, layout: Layout, distro: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], Installed, str | None]:
        params = self.params
        steps: list[dict[str, t.Any]] = []
        source_changes = self.files.plan(layout.files)
        if source_changes:
            steps.append({"do": "files", "changes": source_changes, "action": "write the package sources: "
                          + ", ".join(c.action for c in source_changes)})
        if params.get("mok_key"):
            self._check_pair(params["mok_key"], params["mok_certificate"])
        self.queried = layout.packages + layout.headers + ([layout.pin] if layout.pin else [])
        before = installed_set(pm, self.queried, holds=params["hold"])
        current = driver_version_of(before)
        branch_change = bool(current and layout.branch and current.split(".")[0] != layout.branch)
        version_change = bool(current and params.get("version") and current != params["version"])
        missing = [p for p in layout.packages + layout.headers if p not in before]
        self.pin_pending = bool(layout.pin and layout.pin not in before)
        after: Installed = dict(before)
        installing: str | None = current
        planned = None
        if current and missing and set(missing) <= set(layout.addons) and not (branch_change or version_change or self.pin_pending):
            self._pin_addons(pm, layout, before, current, missing)
        if missing or branch_change or version_change or (self.pin_pending and layout.pin_required):
            planned = self._plan_install(pm, layout, distro, before, missing, source_changes, branch_change, version_change, steps)
        if planned is not None:
            after, installing = planned
        elif params["hold"]:
            unheld = [n for n in self.holdable(pm, layout.packages) if n in before and not before[n][1]]
            if unheld:
                steps.append({"do": "hold", "names": unheld, "after_install": False, "action": f"hold {' '.join(unheld)}"})
                after.update({n: (before[n][0], True) for n in unheld})
        coming = [n for step in steps if step["do"] == "install" for n in step["names"] if n in layout.headers]
        self._plan_kernel_holds(pm, bool(params["hold_kernel"]), coming, steps)
        self._plan_signing(steps)
        if params["blacklist_nouveau"]:
            self._plan_blacklist({BLACKLIST_FILE: BLACKLIST}, steps)
        if pm.name == "apt":
            self._plan_files({UNATTENDED_FILE: UNATTENDED if params["exclude_from_automatic_upgrades"] else None}, steps)
        if params["persistence"]:
            self._plan_units([PERSISTENCE_UNIT], False, steps)
        self._plan_units(list(layout.units), beside_loaded_driver(self.root, installing), steps)
        return steps, after, installing

    def _pin_addons(self, pm: PackageManager, layout: Layout, before: Installed, current: str, missing: list[str]) -> None:
        """Fabric manager (or DCGM) added to an installed driver: the versioned ones at exactly the installed driver's
        package version, not the repository's newest (which would not match it, or would pull a driver upgrade)."""
        installed = [before[n][0] for n in layout.versioned if n in before and upstream_of(before[n][0]) == current]
        if not installed:
            return
        version = installed[0]
        for name in missing:
            if name in layout.versioned:
                self.addon_specs[name] = f"{name}={version}" if pm.name == "apt" else f"{name}-{version}"
        self.version_chosen = bool(self.addon_specs)

    def _plan_units(self, units: list[str], start: bool, steps: list[dict[str, t.Any]]) -> None:
        """Enable the units not enabled (persistence, fabric, DCGM); with ``start``, start the inactive ones too. The
        fabric and DCGM units start only beside the installed driver, loaded (fabric manager at another version than
        the loaded driver does not start: the reboot starts it)."""
        if not units:
            return
        systemctl = self.runner.find("systemctl")
        if not systemctl:
            self.warnings.append(f"systemctl is not on the host: {', '.join(units)} not enabled.")
            return
        for unit in units:
            state = self.runner.run([systemctl, "is-enabled", unit], check=False)
            status = (state.out.strip().splitlines() or [""])[0] if state else ""
            active = False
            if start:
                probe = self.runner.run([systemctl, "is-active", unit], check=False)
                active = bool(probe and probe.out.strip() == "active")
            if status not in ENABLED_STATES or (start and not active):
                now = start and not active
                steps.append({"do": "enable", "systemctl": systemctl, "unit": unit, "now": now,
                              "action": f"enable {unit}" + (" and start it" if now else "")})

    def holdable(self, pm: PackageManager, names: t.Iterable[str]) -> list[str]:
        """``names`` less what is never held with the driver: the hold tool itself, precompiled modules (they follow the kernel)."""
        never = set(HOLD_TOOLS.get(pm.name, [])) | set(self.not_held)
        return [n for n in names if n not in never]

    def _read_secure_boot(self) -> str:
        def run(argv: list[str]) -> t.Any:
            program = self.runner.find(argv[0], ["/usr/bin", "/usr/sbin", "/bin", "/sbin"])
            return self.runner.run([program] + argv[1:], check=False) if program else None

        return _distro.secure_boot_fact(self.root, None, run)

    def _pick_kernel_modules(self, pm: PackageManager, layout: Layout, distro: dict[str, t.Any]) -> Layout:
        """kernel_modules: DKMS-built modules, or Ubuntu's signed precompiled ones (auto: those on an Ubuntu Secure
        Boot host whose archive has them for the running kernel). Precompiled changes the layout's packages."""
        mode = self.params.get("kernel_modules") or "auto"
        ubuntu = distro.get("id") == "ubuntu" and layout.source == "distro"
        if self.params["state"] == "absent" or mode == "dkms":
            self.kernel_modules_reason = "kernel_modules: dkms was set" if mode == "dkms" else ""
            return layout
        if not ubuntu:
            if mode == "precompiled":
                where = ("NVIDIA's repository" if layout.source == "nvidia_repo" else distro_name(distro))
                raise ModuleError(
                    f"kernel_modules: precompiled: signed precompiled NVIDIA modules come from Ubuntu's archive only "
                    f"(linux-modules-nvidia-<branch>-server-<flavour>); {where} has none for this host. Use kernel_modules: dkms "
                    "(on a Secure Boot host with mok_key and mok_certificate, an enrolled key pair DKMS signs with). "
                    f"{NOTHING}"
                )
            self.kernel_modules_reason = "DKMS builds the module: signed precompiled modules are Ubuntu's only"
            return layout
        release = _kernel.check_release(self.kernel or platform.release())
        flavour = _kernel.deb_flavour(release)
        if mode == "auto":
            if _distro.container_fact(self.root):
                self.kernel_modules_reason = "DKMS: in a container the host's kernel loads the module"
                return layout
            self.secure_boot = self._read_secure_boot()
            if self.secure_boot != "enabled":
                self.kernel_modules_reason = f"DKMS: Secure Boot is {self.secure_boot}"
                return layout
        if not flavour or not layout.branch:
            if mode == "precompiled":
                raise ModuleError(f"kernel_modules: precompiled needs a branch and an Ubuntu kernel (release <version>-<abi>-<flavour>); "
                                  f"the running kernel is {release}. Set branch, or use kernel_modules: dkms. {NOTHING}")
            self.kernel_modules_reason = f"DKMS: the running kernel {release} is not one of Ubuntu's flavours"
            return layout
        metas = pm.installed_matching([f"linux-image-{flavour}", f"linux-image-{flavour}-hwe-*"])
        names = _kernel.precompiled_packages(layout.branch, layout.flavor == "open", release,
                                             _kernel.kernel_meta_flavour(flavour, metas), self.params.get("server_packages", True))
        offered = pm.candidates([names.abi]).get(names.abi) if pm.cache_age() is not None else None
        if mode == "auto" and not offered:
            self.kernel_modules_reason = f"DKMS: the archive offers no {names.abi} (signed modules for the running kernel)"
            return layout
        if mode == "precompiled" and pm.cache_age() is not None and not offered:
            raise ModuleError(
                f"Ubuntu's archive (as the package lists say) has no {names.abi}, the signed branch {layout.branch} modules "
                f"for the running kernel {release}: upgrade the kernel to one Canonical has built them for and reboot, or "
                f"use kernel_modules: dkms. {NOTHING}"
            )
        self.kernel_modules = "precompiled"
        why = "kernel_modules: precompiled was set" if mode == "precompiled" else "Secure Boot is enabled and the archive has them"
        self.kernel_modules_reason = f"Ubuntu's signed {names.meta} ({why})"
        self.not_held = [names.meta, names.abi]
        return layout._replace(packages=[names.meta, names.abi] + names.userspace, versioned=names.versioned, headers=[])

    def _plan_kernel_holds(self, pm: PackageManager, want: bool, coming: list[str], steps: list[dict[str, t.Any]]) -> None:
        """hold_kernel: hold the running kernel's packages and its flavour's metas, recorded in a state file of our own;
        without it, release only the holds that file records."""
        before = self.files.current(_kernel.HOLDS_FILE)
        recorded = _kernel.read_record(before)
        if not want and not recorded:
            return
        release = _kernel.check_release(self.kernel or platform.release())
        patterns = _kernel.query_patterns(pm.name, release)
        extra = [_kernel.spec_name(pm.name, r) for r in recorded]
        installed = pm.installed_matching(patterns + [e for e in extra if e not in patterns], holds=True)
        own, metas = _kernel.kernel_packages(pm.name, release, installed)
        own = sorted(set(own) | set(coming))
        if want and not own:
            where = ("in this container (the host's kernel runs it, and no package of it is installed here)"
                     if _distro.container_fact(self.root) else "")
            if not where:
                raise ModuleError(
                    f"hold_kernel: the running kernel {release} has no installed package (no {patterns[0]}): a kernel built by "
                    "hand, or one removed since the boot, cannot be held. Boot a packaged kernel, or set hold_kernel: false. "
                    "Nothing was changed."
                )
            self.warnings.append(f"hold_kernel: the running kernel {release} has no package {where}; only the kernel "
                                 f"metapackages installed are held ({', '.join(metas) or 'none'}).")
        plan = _kernel.plan_holds(pm.name, want, own + metas, installed, recorded)
        self.kernel_holds = {"wanted": plan.wanted, "held": plan.record, "hold": plan.hold, "release": plan.release,
                             "admin_held": plan.kept}
        after = _kernel.record_bytes(pm.name, plan.record)
        changes = self.files.plan({_kernel.HOLDS_FILE: after})
        if not (plan.hold or plan.release or changes):
            return
        words = []
        if plan.release:
            words.append(f"release the kernel holds the collection made ({' '.join(plan.release)})")
        if plan.hold:
            words.append(f"hold the kernel packages {' '.join(plan.hold)}")
        if plan.kept:
            words.append(f"leave {' '.join(plan.kept)} held by the administrator")
        words.append(f"{'record them in' if after else 'remove'} {_kernel.HOLDS_FILE}")
        held_before = sorted(n for n, (dummy, is_held) in installed.items() if is_held)
        held_after = sorted((set(held_before) - {_kernel.spec_name(pm.name, r) for r in plan.release})
                            | {_kernel.spec_name(pm.name, h) for h in plan.hold})
        diff = {"before_header": "kernel package holds", "after_header": "kernel package holds",
                "before": "".join(f"{n}\n" for n in held_before), "after": "".join(f"{n}\n" for n in held_after)}
        steps.append({"do": "kernel_holds", "hold": plan.hold, "release": plan.release, "pkg_mgr": pm.name, "changes": changes,
                      "diffs": [diff] if held_before != held_after else [], "action": ", ".join(words)})

    def _plan_signing(self, steps: list[dict[str, t.Any]]) -> None:
        """mok_key with mok_certificate (checked to be one pair first): the DKMS drop-in that signs with it."""
        key, cert = self.params.get("mok_key") or "", self.params.get("mok_certificate") or ""
        self._plan_files({_kernel.DKMS_SIGNING_FILE: _kernel.signing_conf(key, cert) if key else None}, steps)

    def _check_pair(self, key: str, cert: str) -> None:
        """The certificate's public key is the private key's (openssl); the key's content is never read here or shown."""
        for option, path in (("mok_key", key), ("mok_certificate", cert)):
            if not self.root.exists(path.lstrip("/")):
                raise ModuleError(f"{option} {path} does not exist on the host: give the Machine Owner Key pair DKMS is to sign "
                                  "with (the private key and its DER certificate), or leave mok_key empty. Nothing was changed.")
        openssl = self.runner.find("openssl", ["/usr/bin", "/bin"])
        if not openssl:
            raise ModuleError("openssl is not on the host: it is needed to check that mok_key and mok_certificate are one pair "
                              "(and by DKMS to sign). Install openssl, then rerun. Nothing was changed.")
        from_cert = None
        for form in ("DER", "PEM"):
            result = self.runner.run([openssl, "x509", "-noout", "-pubkey", "-inform", form, "-in", cert], check=False)
            from_cert = _kernel.public_key_of(result.out) if result is not None and result.rc == 0 else None
            if from_cert:
                break
        if not from_cert:
            raise ModuleError(f"mok_certificate {cert} is not an X.509 certificate openssl can read (DER or PEM). Give the "
                              "certificate of the key pair (the file mokutil --import enrolls). Nothing was changed.")
        result = self.runner.run([openssl, "pkey", "-pubout", "-in", key], check=False)
        from_key = _kernel.public_key_of(result.out) if result is not None and result.rc == 0 else None
        if not from_key:
            raise ModuleError(f"mok_key {key} is not a private key openssl can read without a passphrase (DKMS signs unattended). "
                              "Give the unencrypted private key of the pair. Nothing was changed.")
        if from_key != from_cert:
            raise ModuleError(f"mok_key {key} and mok_certificate {cert} are not one key pair (their public keys differ): DKMS "
                              "would sign with a key the enrolled certificate does not match, and the kernel would refuse the "
                              "module. Give the certificate made from this key. Nothing was changed.")

    def _check_secure_boot(self, in_container: bool) -> None:
        """On a Secure Boot host a DKMS module that is not signed by an enrolled key never loads: refuse the install
        unless the MOK certificate DKMS signs with is there and enrolled (mokutil --test-key)."""
        def run(argv: list[str]) -> t.Any:
            program = self.runner.find(argv[0], ["/usr/bin", "/usr/sbin", "/bin", "/sbin"])
            return self.runner.run([program] + argv[1:], check=False) if program else None

        self.secure_boot = "unknown" if in_container else _distro.secure_boot_fact(self.root, None, run)
        if self.secure_boot != "enabled" or self.kernel_modules == "precompiled":
            return  # precompiled: Canonical signed the modules with the kernel's key
        given = self.params.get("mok_certificate") or ""
        candidates = [given] if given else list(MOK_CERTIFICATES)
        cert = next((c for c in candidates if self.root.exists(c.lstrip("/"))), None)
        enroll = ("make DKMS's key pair (dkms generate_mok, or install the dkms package, which makes it), enroll it with "
                  "mokutil --import /var/lib/dkms/mok.pub, reboot and confirm it in the MOK manager at the console, then rerun")
        if self.params.get("mok_key") and cert:
            enroll = _kernel.enrol_steps(cert)  # the pair given: enroll its certificate (the pair was checked to match)
        if cert is None:
            raise ModuleError(
                f"Secure Boot is enabled, and no Machine Owner Key certificate to sign the DKMS-built nvidia module with was "
                f"found ({', '.join(candidates)}): the module would be built but refused by the kernel. To sign it, {enroll}; "
                "or give mok_certificate, the certificate of an enrolled key pair DKMS is set to sign with. Nothing was installed."
            )
        result = run(["mokutil", "--test-key", cert])
        enrolled = mok_enrolled((result.out + result.err) if result is not None else "")
        if enrolled is not True:
            said = "mokutil is not on the host" if result is None else ((result.out + result.err).strip()[:200] or f"rc {result.rc}")
            raise ModuleError(
                f"Secure Boot is enabled and the MOK certificate {cert} is not enrolled ({said}): the DKMS-built nvidia module "
                f"would be refused by the kernel. To fix, {enroll}. Nothing was installed."
            )

    def _plan_install(self, pm: PackageManager, layout: Layout, distro: dict[str, t.Any], before: Installed, missing: list[str],
                      source_changes: list[t.Any], branch_change: bool, version_change: bool,
                      steps: list[dict[str, t.Any]]) -> tuple[Installed, str | None] | None:
        """The refresh, unhold, install and hold steps; None when nothing is to be installed after all (only kernel
        headers the source lacks, in a container)."""
        params = self.params
        in_container = bool(_distro.container_fact(self.root))
        self._check_secure_boot(in_container)
        # The source can be asked now when its package lists are there and stay as they are; else after the refresh.
        checkable = pm.cache_age() is not None and not source_changes
        skip: list[str] = []
        candidates: dict[str, str | None] = {}
        if checkable:
            skip, candidates = check_candidates(pm, layout, missing, params, distro, in_container, self.warnings, self.pin_pending,
                                                self.version_chosen)
            if layout.pin in skip:
                self.pin_pending = False
        else:
            self.warnings.append("The package lists are absent or the sources change: the source's branch and versions are "
                                 "checked after the lists are refreshed, before anything is installed.")
        if checkable and not (branch_change or version_change or self.pin_pending) and not [m for m in missing if m not in skip]:
            return None
        refresh = bool(params["update_cache"] or source_changes)
        # dnf: the branch step holds the branch first (a module stream changes what the repository offers), then checks.
        dnf_branch = pm.name == "dnf" and layout.source == "nvidia_repo" and bool(layout.module_stream or layout.branch)
        verify = not checkable and not dnf_branch
        if refresh or verify:
            action = ("refresh the package lists" + (" (the sources changed)" if source_changes else
                                                     f" when older than {params['cache_valid_time']} s")) if refresh else ""
            if verify:
                action += (", then " if action else "") + "check that the source carries the driver"
            steps.append({"do": "refresh", "refresh": refresh, "force": bool(source_changes), "verify": verify,
                          "check": not dnf_branch, "missing": missing, "in_container": in_container, "pin_pending": self.pin_pending, "action": action})
        to_install = [m for m in missing if m not in skip]
        current = driver_version_of(before)
        if branch_change or version_change:
            # Only what is held again after the upgrade: the kernel headers (an administrator's or hold_kernel's hold) stay.
            held = [n for n in self.holdable(pm, sorted(before)) if before[n][1] and n not in layout.headers]
            what = f"branch {(current or '').split('.')[0]} -> {layout.branch}" if branch_change else f"{current} -> {params['version']}"
            steps.append({"do": "unhold", "names": held, "action": f"driver change ({what}): unhold {', '.join(held) or 'nothing'}, "
                          "upgrade, hold again"})
            to_install = sorted(set(to_install) | set(layout.packages))
        if dnf_branch:
            steps.append({"do": "dnf_branch", "missing": missing, "in_container": in_container, "then": to_install,
                          "action": dnf_branch_action(layout, distro, params["hold"])})
        if self.pin_pending:
            steps.append({"do": "pin", "names": [layout.pin], "missing": missing, "in_container": in_container,
                          "then": to_install, "action": f"install {layout.pin} (holds apt to branch {layout.branch}), then check that the driver's "
                          "candidates are on the branch"})
        steps.append({"do": "install", "names": to_install, "action": f"install {' '.join(to_install)}"})
        simulated = pm.simulate([self.addon_specs.get(n, n) for n in to_install]) if checkable and not self.pin_pending else None
        if simulated:
            wrong = out_of_branch(simulated, layout.branch if layout.source == "nvidia_repo" else None)
            if wrong:
                refuse_out_of_branch(layout, wrong, "would install", bool(layout.pin) and layout.pin not in skip)
        after: Installed = dict(before)
        for name, version in (simulated or {}).items():
            after[name] = (version, False)
        offered = sorted({_nvidia.upstream_version(candidates[p] or "") for p in layout.versioned if candidates.get(p)} - {None})
        if simulated:
            installing = driver_version_of(after)
            refuse_unmatched_addons(layout, simulated, installing)
        elif self.pin_pending:
            installing = params.get("version") or None  # the unpinned candidates are not what apt takes once the pin is in
        else:
            installing = offered[0] if offered else (params.get("version") or None)
        if params["hold"]:
            if simulated is not None:
                # Every package of the driver's version, the ones the install brings as dependencies included.
                names = [n for n in self.holdable(pm, members(after, installing, layout.packages)) if not after[n][1]]
                if names:
                    steps.append({"do": "hold", "names": names, "after_install": False, "action": f"hold {' '.join(names)}"})
            else:
                names = self.holdable(pm, layout.packages)
                steps.append({"do": "hold", "names": names, "after_install": True,
                              "action": f"hold {' '.join(names)} and the driver's other packages of its version, once installed"})
            after.update({n: (after[n][0], True) for n in names if n in after})
        return after, installing

    def _plan_files(self, files: dict[str, bytes | None], steps: list[dict[str, t.Any]]) -> bool:
        """A files step for those of ``files`` that differ from what is wanted; True when there is one."""
        changes = self.files.plan(files)
        if changes:
            steps.append({"do": "files", "changes": changes, "action": ", ".join(c.action for c in changes)})
        return bool(changes)

    def _plan_blacklist(self, files: dict[str, bytes | None], steps: list[dict[str, t.Any]]) -> None:
        if not self._plan_files(files, steps):
            return
        for argv in INITRAMFS_TOOLS:
            program = self.runner.find(argv[0], ["/usr/sbin", "/sbin"])
            if program:
                steps.append({"do": "initramfs", "argv": [program] + argv[1:], "action": f"rebuild the initramfs ({argv[0]})"})
                return
        self.warnings.append("No initramfs tool (update-initramfs or dracut) on the host: nouveau is blacklisted for module "
                             "loading, but an initramfs that carries it is not rebuilt.")

    def _plan_absent(self, pm: PackageManager, layout: Layout) -> tuple[list[dict[str, t.Any]], Installed, str | None]:
        steps: list[dict[str, t.Any]] = []
        self.queried = layout.packages
        before = installed_set(pm, self.queried, holds=True)
        belong = members(before, driver_version_of(before), layout.packages)
        if belong:
            held = [n for n in belong if before[n][1]]
            if held:
                steps.append({"do": "unhold", "names": held, "action": f"unhold {' '.join(held)}"})
            steps.append({"do": "remove", "names": belong, "action": f"remove {' '.join(belong)}"})
        self._plan_kernel_holds(pm, False, [], steps)
        self._plan_files({_kernel.DKMS_SIGNING_FILE: None}, steps)
        self._plan_blacklist({BLACKLIST_FILE: None}, steps)
        if pm.name == "apt":
            self._plan_files({UNATTENDED_FILE: None}, steps)
        after = {n: v for n, v in before.items() if n not in belong}
        return steps, after, driver_version_of(after)

    def _report(self, layout: Layout, after: Installed, installed: str | None, distro: dict[str, t.Any]) -> dict[str, t.Any]:
        """The result keys that describe the host after the run: packages, versions, reboot, branch status."""
        loaded, dummy = _nvidia.loaded_driver(self.root)
        modules = _nvidia.loaded_modules(self.root)
        nvidia = {"installed_version": installed, "loaded_version": loaded, "module_loaded": "nvidia" in modules,
                  "nouveau_loaded": "nouveau" in modules}
        reasons = _host.reboot_reasons(nvidia, self.root) if installed else []
        report: dict[str, t.Any] = {
            "packages": sorted(members(after, installed, layout.packages)) if self.params["state"] == "present" else [],
            "installed_version": installed,
            "loaded_version": loaded,
            "reboot_required": bool(reasons),
            "reboot_reasons": reasons,
        }
        branch = layout.branch or (installed.split(".")[0] if installed else None) or (
            DISTRO_BRANCHES.get((distro.get("id"), distro.get("major"))) if layout.source == "distro" else None
        )
        report["planned_branch"] = branch
        if branch:
            status = _compat.branch_status(branch, self.today or datetime.date.today().isoformat())
            report["branch_status"] = status
            if status["eol_passed"] and not any("end of life" in w for w in self.warnings):
                self.warnings.append(
                    f"Driver branch {branch} ({status['designation']}) reached NVIDIA's end of life in {status['eol']}: plan a "
                    "move to a supported branch (580 is the current long-term support branch)."
                )
        return report

    # Applying ----------------------------------------------------------------------
    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        packages_changed = False
        try:
            for step in plan.steps:
                packages_changed |= self._do(self.pm, step)
        except PackageError as exc:
            raise package_failure(exc) from exc
        if not packages_changed:
            return None
        after = installed_set(self.pm, self.queried)
        return self._report(self.layout, after, driver_version_of(after), self.distro)

    def _apply_kernel_holds(self, pm: PackageManager, step: dict[str, t.Any]) -> None:
        """Release our holds, hold the kernel's packages (less headers the install skipped), then record what we hold."""
        if step["release"]:
            pm.unhold(step["release"])
        hold = [n for n in step["hold"] if n not in self.skipped]
        if hold:
            pm.hold(hold)
        record = [n for n in self.kernel_holds["held"] if n not in self.skipped]
        self.files.apply([_nvidia_repo.FileChange(_kernel.HOLDS_FILE, None, _kernel.record_bytes(step["pkg_mgr"], record))])

    def _do(self, pm: PackageManager, step: dict[str, t.Any]) -> bool:
        """Carry out one step; True when it changed packages."""
        do = step["do"]
        if do == "files":
            self.files.apply(step["changes"])
        elif do == "refresh":
            ran = pm.refresh(self.params["cache_valid_time"], force=step["force"]) if step["refresh"] else False
            if step.get("check", True) and (step["verify"] or ran):
                # The lists changed (or were not there at plan time): ask the source again before installing.
                self.skipped, dummy = check_candidates(pm, self.layout, step["missing"], self.params, self.distro,
                                                       step["in_container"], self.warnings, step.get("pin_pending", False),
                                                       self.version_chosen)
        elif do == "unhold":
            if step["names"]:
                pm.unhold(step["names"])
                self.unheld = list(step["names"])
            return True
        elif do == "dnf_branch":
            try:
                self.skipped, self.specs = hold_dnf_branch(pm, self.layout, self.params, self.distro, step["missing"],
                                                           step["then"], step["in_container"], self.warnings)
            except ModuleError as exc:
                if not self.unheld:
                    raise
                # A branch change unholds before the branch step: a refusal puts the installed driver's hold back.
                pm.hold(self.unheld)
                raise ModuleError(f"{exc.msg} The installed driver's versionlock ({' '.join(self.unheld)}) was put back.",
                                  **exc.details) from exc
            return True
        elif do == "pin":
            names = [n for n in step["names"] if n not in self.skipped]
            if names:
                pm.install(names)
                # The pin is in place: the candidates apt takes now must be on the branch, before the driver is installed.
                skipped, dummy = check_candidates(pm, self.layout, step["missing"], self.params, self.distro,
                                                  step["in_container"], self.warnings, False)
                self.skipped = sorted(set(self.skipped) | set(skipped))
                simulated = pm.simulate([n for n in step["then"] if n not in self.skipped]) or {}
                wrong = out_of_branch(simulated, self.layout.branch)
                if wrong:
                    refuse_out_of_branch(self.layout, wrong, "would install", True)
            return bool(names)
        elif do == "install":
            names = [self.specs.get(n, self.addon_specs.get(n, n)) for n in step["names"] if n not in self.skipped]
            # dnf: components named at the driver's version because the metas would pull newer ones (hold_dnf_branch).
            names += [spec for n, spec in sorted(self.specs.items()) if n not in step["names"]]
            if names:
                pm.install(names)
            return True
        elif do == "hold":
            names = list(step["names"])
            if step["after_install"]:
                after = installed_set(pm, self.queried, holds=True)
                names = [n for n in self.holdable(pm, members(after, driver_version_of(after), names)) if not after[n][1]]
            if names:
                pm.hold(names)
            return True
        elif do == "remove":
            pm.remove(step["names"])
            return True
        elif do == "kernel_holds":
            self._apply_kernel_holds(pm, step)
        elif do == "initramfs":
            self.runner.run(step["argv"], timeout=900)
        elif do == "enable":
            unit = step.get("unit", PERSISTENCE_UNIT)
            result = self.runner.run([step["systemctl"], "enable"] + (["--now"] if step.get("now") else []) + [unit], check=False)
            if result is None or result.rc != 0:
                option = {PERSISTENCE_UNIT: "persistence", _gpu_services.DCGM_UNIT: "dcgm"}.get(unit, "fabric_manager")
                raise ModuleError(
                    f"Could not enable {unit}: {(result.err or result.out).strip() if result else 'systemctl missing'}. "
                    f"Is its package installed (the plan lists it)? Set {option}: false to skip it."
                )
        return False
