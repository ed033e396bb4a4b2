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

from ansible_collections.mlinfra.mlhost.plugins.module_utils._gpu_ids import NVIDIA_GPUS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

NVIDIA_VENDOR = "10de"
# PCI base class 0x03 (display): 0x0300 VGA, 0x0302 3D controller, 0x0380 other.
DISPLAY_CLASSES = ("0x0300", "0x0302", "0x0380")
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
            }
        )
    return gpus


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
