# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Readers of the NVIDIA state of a host: PCI sysfs, /proc, packages, nvidia-smi.

PRIVATE to the collection: no compatibility promise outside it.
Every reader takes a Sysroot (and, for commands, the result of the one door),
so it is tested on fixture trees and captured real output.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._gpu_ids import (
    ARCHITECTURE_NVLINK,
    GPU_COMPUTE_CAPABILITIES,
    GPU_FORM_FACTORS,
    NVIDIA_GPUS,
    NVSWITCH_BRIDGE,
    NVSWITCH_NAMES,
    NVSWITCHES,
)
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

NVIDIA_VENDOR = "10de"
# PCI base class 0x03 (display): 0x0300 VGA, 0x0302 3D controller, 0x0380 other.
DISPLAY_CLASSES = ("0x0300", "0x0302", "0x0380")
# PCI class 0x0680 (bridge, other): what an NVSwitch (2nd and 3rd generation) is on the host's bus.
_NVSWITCH_CLASS = re.compile(r"0x0680[0-9a-f]{2}")
_PCI_ID = re.compile(r"[0-9a-f]{4}")
MELLANOX_VENDOR = "15b3"
# The VPD text of the ConnectX function that manages a 4th-generation NVSwitch (NVLink 5: HGX B100/B200/B300).
NVLINK5_MANAGEMENT_VPD = b"SW_MNG"
MAX_VPD = 32768
_CC_RE = re.compile(r"[0-9]{1,2}\.[0-9]")
PCI_IDS_PATHS = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids", "usr/share/pci.ids")

_VERSION_RE = re.compile(r"\b(\d{3,}\.\d+(?:\.\d+)?)\b")


def pci_ids_name(root: Sysroot, vendor: str, device: str) -> str | None:
    """Look a device up in the host's pci.ids database, if it has one."""
    for candidate in PCI_IDS_PATHS:
        text = root.read(candidate, limit=16 * 1024 * 1024)
        if text is None:
            continue
        inside = False
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            if not line.startswith("\t"):
                if inside:
                    return None
                inside = line[:4].lower() == vendor
                continue
            if inside and not line.startswith("\t\t") and line[1:5].lower() == device:
                name = line[5:].strip()
                bracket = re.search(r"\[(.+)\]", name)
                return "NVIDIA " + (bracket.group(1) if bracket else name)
        return None
    return None


def gpu_name(root: Sysroot, device: str) -> tuple[str, str | None]:
    known = NVIDIA_GPUS.get(device)
    if known:
        return known
    from_db = pci_ids_name(root, NVIDIA_VENDOR, device)
    return (from_db or f"NVIDIA device {NVIDIA_VENDOR}:{device}", None)


def _hex_id(value: str | None) -> str | None:
    if not value:
        return None
    return value.lower().replace("0x", "").zfill(4)


def pci_gpus(root: Sysroot) -> list[dict[str, t.Any]]:
    """NVIDIA display/3D devices from /sys/bus/pci/devices, in PCI order."""
    gpus = []
    for address in root.listdir("sys/bus/pci/devices"):
        base = f"sys/bus/pci/devices/{address}"
        vendor = _hex_id(root.read_line(base, "vendor"))
        if vendor != NVIDIA_VENDOR:
            continue
        pci_class = (root.read_line(base, "class") or "").lower()
        if not pci_class.startswith(DISPLAY_CLASSES):
            continue  # NVSwitch bridges, audio functions, USB-C controllers
        device = _hex_id(root.read_line(base, "device")) or "0000"
        name, architecture = gpu_name(root, device)
        numa = root.read_line(base, "numa_node")
        cc = GPU_COMPUTE_CAPABILITIES.get(device)
        gpus.append(
            {
                "pci": address.lower(),
                "vendor_id": vendor,
                "device_id": device,
                "subsystem_id": _hex_id(root.read_line(base, "subsystem_device")),
                "name": name,
                "architecture": architecture,
                "kernel_driver": root.readlink_name(base, "driver"),
                "numa_node": int(numa) if numa and numa.lstrip("-").isdigit() and int(numa) >= 0 else None,
                "form_factor": GPU_FORM_FACTORS.get(device),
                "compute_capability": cc,
                "compute_capability_source": "table" if cc else None,
            }
        )
    return gpus


def _pci_id(value: str | None) -> str | None:
    """A PCI id file's content ('0x22a3') as four lower-case hex digits, None for anything else."""
    found = _hex_id(value)
    return found if found and _PCI_ID.fullmatch(found) else None


def pci_nvswitches(root: Sysroot) -> list[dict[str, t.Any]]:
    """NVSwitches on /sys/bus/pci/devices (vendor 0x10de, class 0x0680xx), in PCI order.

    An id of the data is named with its generation and NVLink generation; another id of that vendor and class is an
    NVSwitch of a generation not known here (generation and nvlink null), counted all the same. The bridge functions of
    a 3rd-generation switch are left out: they belong to a switch already counted."""
    switches = []
    for address in root.listdir("sys/bus/pci/devices"):
        base = f"sys/bus/pci/devices/{address}"
        if _pci_id(root.read_line(base, "vendor")) != NVIDIA_VENDOR:
            continue
        if not _NVSWITCH_CLASS.fullmatch((root.read_line(base, "class") or "").lower()):
            continue
        device = _pci_id(root.read_line(base, "device"))
        generation, nvlink, function = NVSWITCHES.get(device or "", (None, None, None))
        if function == NVSWITCH_BRIDGE:
            continue
        name = NVSWITCH_NAMES.get(generation) if generation else None
        switches.append({
            "pci": address.lower(),
            "device_id": device,
            "name": name or f"NVIDIA NVSwitch of an unknown generation ({NVIDIA_VENDOR}:{device or '????'})",
            "generation": generation,
            "nvlink": nvlink,
            "kernel_driver": root.readlink_name(base, "driver"),
        })
    return switches


def nvlink5_management_ports(root: Sysroot) -> list[dict[str, t.Any]]:
    """ConnectX functions (vendor 0x15b3) whose VPD carries SW_MNG: the management ports of 4th-generation NVSwitches
    (HGX B100/B200/B300), which NVLSM drives. The VPD is readable by root only; unread, the list is empty."""
    ports = []
    for address in root.listdir("sys/bus/pci/devices"):
        base = f"sys/bus/pci/devices/{address}"
        if _pci_id(root.read_line(base, "vendor")) != MELLANOX_VENDOR:
            continue
        vpd = root.read_bytes(base, "vpd", limit=MAX_VPD)
        if not vpd or NVLINK5_MANAGEMENT_VPD not in vpd:
            continue
        ports.append({
            "pci": address.lower(),
            "device_id": _pci_id(root.read_line(base, "device")),
            "infiniband": (root.listdir(base, "infiniband") or [None])[0],
            "kernel_driver": root.readlink_name(base, "driver"),
        })
    return ports


def cc_key(value: str) -> tuple[int, int]:
    major, dummy, minor = value.partition(".")
    return int(major), int(minor)


def merge_smi_compute_capability(gpus: list[dict[str, t.Any]], smi: list[dict[str, t.Any]]) -> None:
    """nvidia-smi's compute_cap wins over the table, matched by PCI address."""
    by_pci = {row.get("pci"): row.get("compute_cap") for row in smi}
    for gpu in gpus:
        cap = by_pci.get(gpu["pci"])
        if cap and _CC_RE.fullmatch(cap):
            gpu["compute_capability"], gpu["compute_capability_source"] = cap, "nvidia-smi"


def min_compute_capability(gpus: list[dict[str, t.Any]]) -> str | None:
    """The lowest compute capability among the GPUs that have one."""
    caps = [g["compute_capability"] for g in gpus if g.get("compute_capability")]
    return min(caps, key=cc_key) if caps else None


def gpu_platform(gpus: list[dict[str, t.Any]], switches: list[dict[str, t.Any]], ports: list[dict[str, t.Any]]) -> str:
    """superchip, sxm or pcie (the most integrated form factor among the GPUs wins), none without a GPU; sxm for GPUs
    of no known form factor beside NVSwitches, else unknown."""
    if not gpus:
        return "none"
    forms = {g.get("form_factor") for g in gpus}
    for form in ("superchip", "sxm", "pcie"):
        if form in forms:
            return form
    return "sxm" if switches or ports else "unknown"


def nvlink_generation(gpus: list[dict[str, t.Any]], switches: list[dict[str, t.Any]], ports: list[dict[str, t.Any]]) -> int | None:
    """The NVLink generation the ids say: the NVSwitches', 5 beside an NVLink 5 management port, else that of the
    SXM or superchip GPUs' architecture; None for PCIe cards and unknown ids."""
    known = [s["nvlink"] for s in switches if s.get("nvlink")]
    if known:
        return max(known)
    if ports:
        return 5
    linked = [ARCHITECTURE_NVLINK[g["architecture"]] for g in gpus
              if g.get("form_factor") in ("sxm", "superchip") and g.get("architecture") in ARCHITECTURE_NVLINK]
    return max(linked) if linked else None


def fabric_service(gpus: list[dict[str, t.Any]], switches: list[dict[str, t.Any]], ports: list[dict[str, t.Any]]) -> str:
    """What the GPU fabric needs running on this host (the rules of docs/gpu-fabric.md):

    imex for Grace Blackwell superchips (GB200/GB300: NVL72 racks, whose NVSwitches sit in switch trays, not on this
    host's bus); fabric_manager_nvlsm for Blackwell SXM GPUs (HGX B100/B200/B300) or an NVLink 5 switch management
    port; fabric_manager for NVSwitches on the PCI bus beside other GPUs (HGX A100/H100/H200); else none (PCIe cards,
    GH200 without a switch, 4-GPU boards with direct NVLink)."""
    if not gpus:
        return "fabric_manager" if switches else "none"  # a shared-NVSwitch service VM: the switches, no GPU
    blackwell = {g.get("form_factor") for g in gpus if g.get("architecture") == "blackwell"}
    if "superchip" in blackwell:
        return "imex"
    if ports or "sxm" in blackwell or (switches and blackwell):
        return "fabric_manager_nvlsm"
    return "fabric_manager" if switches else "none"


def fabric_facts(root: Sysroot, gpus: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The NVSwitch and fabric facts of ``nvidia``. VPDs are read only where there is an NVIDIA GPU on the bus."""
    switches = pci_nvswitches(root)
    ports = nvlink5_management_ports(root) if gpus else []
    return {
        "nvswitch_count": len(switches),
        "nvswitches": switches,
        "nvlink5_management_ports": ports,
        "platform": gpu_platform(gpus, switches, ports),
        "nvlink_generation": nvlink_generation(gpus, switches, ports),
        "fabric_service": fabric_service(gpus, switches, ports),
    }


def loaded_modules(root: Sysroot) -> list[str]:
    """Names of loaded kernel modules from /proc/modules."""
    text = root.read("proc/modules") or ""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_proc_version(text: str | None) -> tuple[str | None, str | None]:
    """(version, flavor) from /proc/driver/nvidia/version; flavor open/proprietary."""
    if not text:
        return None, None
    for line in text.splitlines():
        if line.startswith("NVRM version"):
            match = _VERSION_RE.search(line.split("Module", 1)[-1])
            if match:
                flavor = "open" if "Open Kernel Module" in line else "proprietary"
                return match.group(1), flavor
    return None, None


def loaded_driver(root: Sysroot) -> tuple[str | None, str | None]:
    version, flavor = parse_proc_version(root.read("proc/driver/nvidia/version"))
    if version:
        return version, flavor
    sys_version = root.read_line("sys/module/nvidia/version")
    if sys_version and _VERSION_RE.fullmatch(sys_version):
        return sys_version, None
    return None, None


# Packages whose version is the driver's version, most telling first.
# Debian: nvidia-driver, nvidia-kernel-dkms / nvidia-open-kernel-dkms, libcuda1.
# Ubuntu: nvidia-driver-<branch>[-server][-open], libnvidia-compute-<branch>.
# NVIDIA's repositories: cuda-drivers, nvidia-driver(-cuda), nvidia-open, kmod-nvidia-*.
# RPM Fusion: xorg-x11-drv-nvidia, akmod-nvidia.
_DRIVER_PACKAGE_PATTERNS = [
    re.compile(p)
    for p in (
        r"^nvidia-driver$",
        r"^nvidia-driver-\d+(-server)?(-open)?$",
        r"^cuda-drivers(-\d+)?$",
        r"^nvidia-open$",
        r"^nvidia-driver-cuda$",
        r"^xorg-x11-drv-nvidia$",
        r"^nvidia-kernel-dkms$",
        r"^nvidia-open-kernel-dkms$",
        r"^nvidia-kernel-open-dkms$",
        r"^kmod-nvidia(-latest|-open)?-dkms$",
        r"^akmod-nvidia$",
        r"^libnvidia-compute-\d+$",
        r"^libcuda1$",
        r"^nvidia-driver-libs$",
    )
]
RPM_DRIVER_PACKAGES = [
    "nvidia-driver",
    "nvidia-driver-cuda",
    "cuda-drivers",
    "nvidia-open",
    "xorg-x11-drv-nvidia",
    "kmod-nvidia-latest-dkms",
    "kmod-nvidia-open-dkms",
    "akmod-nvidia",
]


def _driver_rank(name: str) -> int | None:
    for rank, pattern in enumerate(_DRIVER_PACKAGE_PATTERNS):
        if pattern.match(name):
            return rank
    return None


def upstream_version(package_version: str) -> str | None:
    """'1:535.261.03-1~deb12u1' -> '535.261.03'; '550.163.01-0ubuntu0.24.04.1' -> '550.163.01'."""
    version = package_version.split(":", 1)[-1]
    match = re.match(r"(\d+\.\d+(?:\.\d+)?)", version)
    return match.group(1) if match else None


def parse_dpkg_status(text: str | None, wanted: t.Callable[[str], bool]) -> dict[str, str]:
    """Installed packages (name -> version) from a dpkg status file, filtered by name."""
    found: dict[str, str] = {}
    for stanza in (text or "").split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, dummy, value = line.partition(":")
            if key in ("Package", "Status", "Version"):
                fields[key] = value.strip()
        name = fields.get("Package")
        if name and wanted(name) and fields.get("Status", "").endswith(" installed") and "Version" in fields:
            found[name] = fields["Version"]
    return found


def parse_rpm_query(text: str) -> dict[str, str]:
    """Output of ``rpm -q --qf '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n' ...``."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "\t" not in line:
            continue  # "package X is not installed"
        name, dummy, version = line.partition("\t")
        found[name.strip()] = version.strip()
    return found


def installed_driver(packages: dict[str, str]) -> tuple[str | None, list[dict[str, str]]]:
    """(driver version, [{name, version}]) from the installed package map."""
    ranked = sorted((_driver_rank(name), name) for name in packages if is_driver_package(name))
    listing = [{"name": name, "version": packages[name]} for name in sorted(name for rank, name in ranked)]
    for rank, name in ranked:
        version = upstream_version(packages[name])
        if version:
            return version, listing
    return None, listing


def is_driver_package(name: str) -> bool:
    return _driver_rank(name) is not None


SMI_FIELDS = [
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "memory.total",
    "driver_version",
    "persistence_mode",
    "compute_cap",
]


def _smi_value(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "[N/A]", "N/A", "[Not Supported]", "[Unknown Error]") else value


def normalize_pci(bus_id: str | None) -> str | None:
    """'00000000:17:00.0' (nvidia-smi) -> '0000:17:00.0' (sysfs)."""
    if not bus_id:
        return None
    match = re.match(r"^(?:[0-9a-fA-F]*?)([0-9a-fA-F]{1,4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$", bus_id.strip())
    if not match:
        return bus_id.strip().lower()
    domain, bus, dev, fn = match.groups()
    return f"{int(domain, 16):04x}:{bus.lower()}:{dev.lower()}.{fn}"


def parse_smi_csv(text: str, fields: list[str]) -> list[dict[str, t.Any]]:
    """Rows of ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = [_smi_value(v) for v in line.split(",")]
        if len(values) != len(fields):
            continue
        raw = dict(zip(fields, values))
        memory = raw.get("memory.total")
        rows.append(
            {
                "index": int(raw["index"]) if raw.get("index") and raw["index"].isdigit() else None,
                "name": raw.get("name"),
                "uuid": raw.get("uuid"),
                "pci": normalize_pci(raw.get("pci.bus_id")),
                "memory_total_mib": int(float(memory)) if memory and re.fullmatch(r"\d+(\.\d+)?", memory) else None,
                "driver_version": raw.get("driver_version"),
                "persistence_mode": (raw.get("persistence_mode") or "").lower() == "enabled"
                if raw.get("persistence_mode")
                else None,
                "compute_cap": raw.get("compute_cap"),
            }
        )
    return rows


def parse_smi_cuda_version(text: str) -> str | None:
    """'CUDA Version: 13.0' from nvidia-smi's banner."""
    match = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", text)
    return match.group(1) if match else None


# DKMS: is the NVIDIA kernel module built and installed for every installed kernel?
#
# ``dkms status`` lines for the nvidia* modules (dkms.in's do_status and do_status_weak):
#   nvidia/535.261.03, 6.1.0-28-amd64, x86_64: installed        dkms 2.8.7 and later
#   nvidia, 535.104.05, 6.1.0-13-amd64, x86_64: installed       dkms 2.8.5 and earlier, and every installed-weak line
#   nvidia/590.48.01: added                                     registered, built for no kernel (also ``broken``)
# then the state (added, built, installed, installed-weak, broken) and remarks: ``(original_module exists)``,
# ``(WARNING! Diff between built and installed module!)``, ``from <kernel built for>`` after installed-weak.
# Distributions name the module differently: nvidia (Ubuntu, NVIDIA's repositories), nvidia-current and
# nvidia-current-open (Debian), nvidia-open, nvidia-srv; nvidia-fs (GPUDirect Storage) is no driver.
_DKMS_LINE = re.compile(
    r"(?P<module>nvidia[A-Za-z0-9_.+-]*)(?:/|,[ \t]*)(?P<version>[0-9A-Za-z][0-9A-Za-z.+~_-]*)"
    r"(?:,[ \t]*(?P<kernel>[0-9][0-9A-Za-z.+~_-]*),[ \t]*(?P<arch>[0-9A-Za-z_-]+))?"
    r":[ \t]*(?P<state>[a-z][a-z-]*)(?P<detail>.*)"
)
_DKMS_NAME = re.compile(r"nvidia[A-Za-z0-9_.+-]{0,99}")
_DKMS_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~_-]{0,99}")
# DKMS's own test for a kernel directory below <module>/<version>/ is the glob +([0-9]).*
_DKMS_KERNEL_DIR = re.compile(r"[0-9]+\.[0-9A-Za-z.+~_-]{0,199}")
_DRIVER_VERSION = re.compile(r"[0-9]{3,}\.[0-9]+(?:\.[0-9]+)?")
DKMS_TREE = "var/lib/dkms"
# Where DKMS installs a module below /lib/modules/<kernel>: Debian, Ubuntu, Arch (updates/dkms), Fedora and the
# RHEL family (extra), SUSE (updates).
DKMS_INSTALL_DIRS = ("updates/dkms", "extra", "updates")
DKMS_INSTALLED_STATES = ("installed", "installed-weak")
MAX_DKMS_LINE = 1024
MAX_DKMS_ENTRIES = 1024


def _dkms_entry(module: str, version: str, kernel: str | None, arch: str | None, state: str, detail: str | None = None) -> dict[str, t.Any]:
    return {"module": module, "version": version, "kernel": kernel, "arch": arch, "state": state, "detail": detail}


def parse_dkms_status(text: str | None) -> list[dict[str, t.Any]]:
    """The nvidia* lines of ``dkms status`` (both generations): ``[{module, version, kernel, arch, state, detail}]``.

    ``kernel`` and ``arch`` are None for an ``added`` or ``broken`` module; ``detail`` holds what follows the
    state (``(original_module exists)``, ``from 6.1.0-13-amd64``), else None. Other modules, warnings, ``Error!``
    lines and anything that is no status line are left out; so are lines over 1 KiB and lines with NUL bytes."""
    entries: list[dict[str, t.Any]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        match = _DKMS_LINE.fullmatch(line) if len(line) <= MAX_DKMS_LINE and "\x00" not in line else None
        if not match:
            continue
        detail = match.group("detail").strip() or None
        entries.append(_dkms_entry(match.group("module"), match.group("version"), match.group("kernel"), match.group("arch"),
                                   match.group("state"), detail))
        if len(entries) >= MAX_DKMS_ENTRIES:
            break
    return entries


def _dkms_active_links(root: Sysroot, module: str) -> dict[tuple[str, str], str]:
    """(kernel, arch) -> version, from the ``kernel-<kernel>-<arch>`` links DKMS makes when it installs a build
    (their target is ``<version>/<kernel>/<arch>``); ``dkms status`` says installed where one points at a build."""
    active = {}
    for name in root.listdir(DKMS_TREE, module):
        target = root.readlink(DKMS_TREE, module, name) if name.startswith("kernel-") else None
        parts = (target or "").rstrip("/").split("/")
        if len(parts) >= 3 and name == f"kernel-{parts[-2]}-{parts[-1]}":
            active[(parts[-2], parts[-1])] = parts[-3]
    return active


def _dkms_source_present(root: Sysroot, module: str, version: str) -> bool | None:
    """True when the version's ``source`` link leads to a directory in the tree, False when it leads nowhere
    (DKMS calls the module broken), None when there is no ``source``: not a version DKMS knows."""
    base = f"{DKMS_TREE}/{module}/{version}"
    target = root.readlink(base, "source")
    if target is None:
        return True if root.isdir(base, "source") else None
    return root.isdir(target if target.startswith("/") else f"{base}/{target}")


def _dkms_files_installed(root: Sysroot, built: str, kernel: str) -> bool:
    """Whether every module file DKMS built (``nvidia.ko``, ``nvidia-uvm.ko.xz``, ...) is in one of the directories
    DKMS installs to below ``/lib/modules/<kernel>``."""
    names = [name for name in root.listdir(built) if ".ko" in name]
    if not names:
        return False
    return any(all(root.exists(base, kernel, where, name) for name in names) for base in ("lib/modules", "usr/lib/modules")
               for where in DKMS_INSTALL_DIRS)


def _dkms_build_state(root: Sysroot, module: str, version: str, kernel: str, arch: str, linked: str | None) -> tuple[str, str | None]:
    """installed when the built module files are in /lib/modules/<kernel> and DKMS's link for that kernel points at
    this build (or there is no link at all, as in a tree copied without it); else built."""
    files = _dkms_files_installed(root, f"{DKMS_TREE}/{module}/{version}/{kernel}/{arch}/module", kernel)
    if files and linked in (version, None):
        return "installed", None if linked else "no DKMS kernel link; the module files are in /lib/modules"
    if linked == version:
        return "built", "DKMS's kernel link says installed, but the module files are not in /lib/modules"
    return "built", None


def _dkms_version_entries(root: Sysroot, module: str, version: str, active: dict[tuple[str, str], str]) -> list[dict[str, t.Any]]:
    present = _dkms_source_present(root, module, version)
    if present is None:
        return []
    if not present:
        return [_dkms_entry(module, version, None, None, "broken", "the source directory is missing")]
    entries = []
    base = f"{DKMS_TREE}/{module}/{version}"
    for kernel in root.listdir(base):
        if not _DKMS_KERNEL_DIR.fullmatch(kernel):
            continue
        for arch in root.listdir(base, kernel):
            if root.isdir(base, kernel, arch, "module"):
                state, detail = _dkms_build_state(root, module, version, kernel, arch, active.get((kernel, arch)))
                entries.append(_dkms_entry(module, version, kernel, arch, state, detail))
    return entries or [_dkms_entry(module, version, None, None, "added")]


def dkms_tree_status(root: Sysroot) -> list[dict[str, t.Any]]:
    """What ``dkms status`` says of the nvidia* modules, read from the files instead of running it (for a sysroot).

    ``/var/lib/dkms/<module>/<version>/`` with a ``source`` is registered (added; broken when the source is gone);
    ``<version>/<kernel>/<arch>/module/`` is a build (built); a build whose module files are in
    ``/lib/modules/<kernel>/updates/dkms`` (``extra``, ``updates``) and that DKMS's ``kernel-<kernel>-<arch>`` link
    points at, or that has no such link, is installed. installed-weak (RHEL's weak-updates links) is not read."""
    entries: list[dict[str, t.Any]] = []
    for module in root.listdir(DKMS_TREE):
        if not _DKMS_NAME.fullmatch(module) or not root.isdir(DKMS_TREE, module):
            continue
        active = _dkms_active_links(root, module)
        for version in root.listdir(DKMS_TREE, module):
            if _DKMS_VERSION.fullmatch(version) and version != "original_module" and not version.startswith("kernel-"):
                entries.extend(_dkms_version_entries(root, module, version, active))
    return entries[:MAX_DKMS_ENTRIES]


def _driver_version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def dkms_driver_check(entries: list[dict[str, t.Any]], kernels: list[str], installed_version: str | None) -> tuple[str | None, list[str], bool | None]:
    """(the driver version checked, the installed kernels it is not installed for, ok).

    Entries count when their version is a driver version (535.261.03: nvidia-fs 2.17.5 is not the driver). The
    version checked is the installed driver's (from the packages) when DKMS has it, none when DKMS does not (the
    installed driver's modules come from elsewhere: precompiled packages, a stale registration), and DKMS's newest
    when no package says which driver is installed. ok is None when there is no version to check or no installed
    kernel is known, True when every installed kernel has it installed (installed or installed-weak), else False."""
    versions = {e["version"] for e in entries if _DRIVER_VERSION.fullmatch(e["version"])}
    if installed_version:
        version = installed_version if installed_version in versions else None
    else:
        version = max(versions, key=_driver_version_key) if versions else None
    if version is None or not kernels:
        return version, [], None
    have = {e["kernel"] for e in entries if e["version"] == version and e["state"] in DKMS_INSTALLED_STATES}
    missing = [kernel for kernel in kernels if kernel not in have]
    return version, missing, not missing
