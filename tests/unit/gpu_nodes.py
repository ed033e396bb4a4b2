# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixture sysroots of four GPU nodes, for host_facts' fabric facts.

HAND-MADE STAND-INS, not captures: no GPU node was at hand. Each tree is built from the PCI ids alone, in sysfs's
layout (``/sys/bus/pci/devices/<address>/{vendor,device,class,subsystem_device,numa_node,driver}``, the ``vpd``
attribute, the ``infiniband/mlx5_N`` directory the mlx5 driver makes), with bus addresses of the shape such machines
have. The ids are those of ``_gpu_ids`` (pci.ids 2025.06.09, NVIDIA's open-gpu-kernel-modules nvswitch.c):

- ``hgx_h100``: 8 x H100 SXM5 (10de:2330) and 4 x 3rd-generation NVSwitch (10de:22a3, class 0x068000), x86_64.
- ``pcie_l40s``: 2 x L40S (10de:26b9), the board's ASPEED VGA (1a03:2000) and a ConnectX-7 NIC (15b3:1021) whose VPD
  is a plain NIC's; no NVSwitch.
- ``gb200``: a GB200 compute tray's host, aarch64, 4 x GB200 (10de:2941) in PCI domains of their own; no NVSwitch on
  the bus (NVL72's switches sit in the rack's switch trays).
- ``hgx_b200``: 8 x B200 (10de:2901) and the four NVLink 5 switch management ports (ConnectX functions, 15b3:1021, VPD
  with SW_MNG, bound to mlx5_core, infiniband mlx5_8..mlx5_11: the count siderolabs/extensions#893 shows on an HGX
  B200). The VPD bytes are hand-written in the PCI VPD layout (identifier string, VPD-R keywords, end tag); only the
  text SW_MNG in them is read, as NVIDIA's gpu-driver-container does. The ports' device id is a ConnectX-7's: the real
  one was not confirmed.
"""

from __future__ import annotations

import struct
import typing as t

from mlhost_testlib import Link, fixture_text

H100_BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
B200_BUSES = ["1b", "43", "52", "61", "9d", "c3", "d1", "df"]


def pci(address: str, vendor: str, device: str, cls: str, driver: str | None = "nvidia", numa: str = "0",
        subsystem: str = "0x0000") -> dict[str, t.Any]:
    base = f"sys/bus/pci/devices/{address}"
    files: dict[str, t.Any] = {f"{base}/vendor": f"0x{vendor}\n", f"{base}/device": f"0x{device}\n",
                               f"{base}/class": f"{cls}\n", f"{base}/subsystem_device": f"{subsystem}\n",
                               f"{base}/numa_node": f"{numa}\n"}
    if driver:
        files[f"{base}/driver"] = Link(f"../../../../bus/pci/drivers/{driver}")
    return files


def vpd(identifier: str, keywords: dict[str, str]) -> bytes:
    """PCI VPD: a large identifier-string resource (0x82), a VPD-R resource (0x90) of keywords, the end tag (0x78)."""
    ident = identifier.encode()
    body = b"".join(key.encode() + bytes([len(value)]) + value.encode() for key, value in keywords.items())
    return b"\x82" + struct.pack("<H", len(ident)) + ident + b"\x90" + struct.pack("<H", len(body)) + body + b"\x78"


def connectx(address: str, text: str, infiniband: str | None, numa: str = "0") -> dict[str, t.Any]:
    files = pci(address, "15b3", "1021", "0x020700", driver="mlx5_core", numa=numa)
    keywords = {"PN": "MCX75310AAS-NEAT", "SN": "MT0000X00000", "V3": text}
    files[f"sys/bus/pci/devices/{address}/vpd"] = vpd("NVIDIA ConnectX-7 (stand-in)", keywords)
    if infiniband:
        files[f"sys/bus/pci/devices/{address}/infiniband/{infiniband}"] = None
    return files


def base_host(arch: str = "x86_64", os_release: str = "ubuntu2404") -> dict[str, t.Any]:
    return {
        "etc/os-release": fixture_text(f"os-release/{os_release}"),
        "proc/modules": fixture_text("proc/modules-nvidia"),
        "proc/sys/kernel/osrelease": "6.8.0-60-generic\n",
        "proc/sys/kernel/arch": f"{arch}\n",
        "proc/1/cgroup": "0::/init.scope\n",
        "sys/bus/pci/devices": None,
        "sys/firmware/acpi": None,
        "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\nVersion: 5.2.21-2ubuntu4\n",
    }


def hgx_h100() -> dict[str, t.Any]:
    files = base_host()
    for i, bus in enumerate(H100_BUSES):
        files.update(pci(f"0000:{bus}:00.0", "10de", "2330", "0x030200", numa=str(i // 4), subsystem="0x16c1"))
    for bus in ("05", "06", "07", "08"):
        files.update(pci(f"0000:{bus}:00.0", "10de", "22a3", "0x068000", subsystem="0x1796"))
    return files


def pcie_l40s() -> dict[str, t.Any]:
    files = base_host(os_release="debian12")
    files.update(pci("0000:03:00.0", "1a03", "2000", "0x030000", driver="ast"))
    files.update(pci("0000:4b:00.0", "10de", "26b9", "0x030200", subsystem="0x1851"))
    files.update(pci("0000:ca:00.0", "10de", "26b9", "0x030200", numa="1", subsystem="0x1851"))
    files.update(connectx("0000:2a:00.0", "ETH_NIC", "mlx5_0"))
    return files


def gb200() -> dict[str, t.Any]:
    files = base_host(arch="aarch64")
    for i, domain in enumerate(("0008", "0009", "0018", "0019")):
        files.update(pci(f"{domain}:01:00.0", "10de", "2941", "0x030200", numa=str(i // 2), subsystem="0x2046"))
    files.update(connectx("0000:03:00.0", "ETH_NIC", "mlx5_0"))
    return files


def hgx_b200() -> dict[str, t.Any]:
    files = base_host()
    for i, bus in enumerate(B200_BUSES):
        files.update(pci(f"0000:{bus}:00.0", "10de", "2901", "0x030200", numa=str(i // 4), subsystem="0x1999"))
    for n, address in enumerate(("0000:8a:00.0", "0000:8a:00.1", "0000:8b:00.0", "0000:8b:00.1"), start=8):
        files.update(connectx(address, "SW_MNG", f"mlx5_{n}", numa="1"))
    files.update(connectx("0000:0c:00.0", "ETH_NIC", "mlx5_0"))  # a compute NIC beside them: no SW_MNG
    return files


NODES = {"hgx_h100": hgx_h100, "pcie_l40s": pcie_l40s, "gb200": gb200, "hgx_b200": hgx_b200}
