# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia
from ansible_collections.mlinfra.mlhost.plugins.module_utils._gpu_ids import NVIDIA_GPUS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

from mlhost_testlib import Link, fixture_text


def pci_device(address, device, cls="0x030200", vendor="0x10de", driver="nvidia", numa="0"):
    base = f"sys/bus/pci/devices/{address}"
    files = {f"{base}/vendor": vendor + "\n", f"{base}/device": f"0x{device}\n", f"{base}/class": cls + "\n",
             f"{base}/subsystem_device": "0x16c1\n", f"{base}/numa_node": numa + "\n"}
    if driver:
        files[f"{base}/driver"] = Link(f"../../../../bus/pci/drivers/{driver}")
    return files


def test_pci_gpus_keeps_nvidia_display_devices_only(tree):
    files = {}
    files.update(pci_device("0000:17:00.0", "2330"))
    files.update(pci_device("0000:05:00.0", "22a3", cls="0x068000"))  # H100 NVSwitch: a bridge
    files.update(pci_device("0000:17:00.1", "22ba", cls="0x040300"))  # HDMI audio function
    files.update(pci_device("0000:00:02.0", "46a6", vendor="0x8086", cls="0x030000", driver="i915"))
    files.update(pci_device("0000:65:00.0", "2684", cls="0x030000", driver=None, numa="-1"))
    gpus = _nvidia.pci_gpus(Sysroot(str(tree(files))))
    assert [g["pci"] for g in gpus] == ["0000:17:00.0", "0000:65:00.0"]
    h100, rtx = gpus
    assert h100 == {
        "pci": "0000:17:00.0", "vendor_id": "10de", "device_id": "2330", "subsystem_id": "16c1",
        "name": "NVIDIA H100 SXM5 80GB", "architecture": "hopper", "kernel_driver": "nvidia", "numa_node": 0,
        "form_factor": "sxm", "compute_capability": "9.0", "compute_capability_source": "table",
    }
    assert rtx["name"] == "NVIDIA GeForce RTX 4090" and rtx["kernel_driver"] is None and rtx["numa_node"] is None


def test_no_pci_bus_means_no_gpus(tree):
    assert _nvidia.pci_gpus(Sysroot(str(tree({"etc": None})))) == []


@pytest.mark.parametrize(
    "device, name",
    [
        ("1db6", "NVIDIA Tesla V100 PCIe 32GB"), ("20b2", "NVIDIA A100 SXM4 80GB"), ("2236", "NVIDIA A10"),
        ("20b7", "NVIDIA A30"), ("27b8", "NVIDIA L4"), ("26b9", "NVIDIA L40S"), ("2331", "NVIDIA H100 PCIe"),
        ("2335", "NVIDIA H200 SXM 141GB"), ("2342", "NVIDIA GH200 120GB / 480GB"), ("2901", "NVIDIA B200"),
        ("2684", "NVIDIA GeForce RTX 4090"), ("2b85", "NVIDIA GeForce RTX 5090"), ("1eb8", "NVIDIA Tesla T4"),
    ],
)
def test_device_table(device, name):
    assert NVIDIA_GPUS[device][0] == name


def test_device_table_ids_are_lowercase_four_hex_digits():
    assert all(len(k) == 4 and k == k.lower() and int(k, 16) >= 0 for k in NVIDIA_GPUS)


PCI_IDS = """# pci.ids excerpt
10de  NVIDIA Corporation
\t2bb9  GB202GL [Some Future Board]
\t\t10de 204b  a subsystem line
\t1234  Plain Name Without Brackets
10df  Emulex Corporation
\t2bb8  Not NVIDIA
"""


def test_unknown_device_named_from_pci_ids(tree):
    root = Sysroot(str(tree({"usr/share/misc/pci.ids": PCI_IDS})))
    assert _nvidia.gpu_name(root, "2bb9") == ("NVIDIA Some Future Board", None)
    assert _nvidia.gpu_name(root, "1234") == ("NVIDIA Plain Name Without Brackets", None)
    assert _nvidia.gpu_name(root, "2bb8") == ("NVIDIA device 10de:2bb8", None)


def test_unknown_device_without_pci_ids(tree):
    assert _nvidia.gpu_name(Sysroot(str(tree({"etc": None}))), "ffff") == ("NVIDIA device 10de:ffff", None)


@pytest.mark.parametrize(
    "fixture, version, flavor",
    [
        ("proc/nvidia-version-580-open", "580.95.05", "open"),
        ("proc/nvidia-version-535", "535.261.03", "proprietary"),
        ("proc/nvidia-version-550-rocky", "550.54.14", "proprietary"),
    ],
)
def test_proc_version(fixture, version, flavor):
    assert _nvidia.parse_proc_version(fixture_text(fixture)) == (version, flavor)


def test_proc_version_garbage():
    assert _nvidia.parse_proc_version("") == (None, None)
    assert _nvidia.parse_proc_version("NVRM version: something odd\n") == (None, None)


def test_loaded_driver_falls_back_to_sys_module(tree):
    root = Sysroot(str(tree({"sys/module/nvidia/version": "570.172.08\n"})))
    assert _nvidia.loaded_driver(root) == ("570.172.08", None)


DPKG_STATUS = """Package: nvidia-driver
Status: install ok installed
Priority: optional
Version: 535.261.03-1~deb12u1
Description: NVIDIA metapackage
 multi-line description: Version: 1.0

Package: nvidia-kernel-dkms
Status: deinstall ok config-files
Version: 525.147.05-4~deb12u1

Package: libcuda1
Status: install ok installed
Version: 535.261.03-1~deb12u1

Package: bash
Status: install ok installed
Version: 5.2.15-2+b7
"""


def test_dpkg_status_parser_keeps_installed_wanted_packages():
    found = _nvidia.parse_dpkg_status(DPKG_STATUS, _nvidia.is_driver_package)
    assert found == {"nvidia-driver": "535.261.03-1~deb12u1", "libcuda1": "535.261.03-1~deb12u1"}


@pytest.mark.parametrize(
    "packages, version",
    [
        ({"nvidia-driver": "535.261.03-1~deb12u1"}, "535.261.03"),
        ({"nvidia-driver-550-server-open": "550.163.01-0ubuntu0.24.04.1", "libnvidia-compute-550": "550.163.01-0ubuntu0.24.04.1"}, "550.163.01"),
        ({"cuda-drivers": "580.95.05-1", "nvidia-open": "580.95.05-1"}, "580.95.05"),
        ({"nvidia-driver": "3:550.54.14-1.el9"}, "550.54.14"),
        ({"libcuda1": "1:535.261.03-1"}, "535.261.03"),
        ({"bash": "5.2"}, None),
        ({}, None),
    ],
)
def test_installed_driver(packages, version):
    assert _nvidia.installed_driver(packages)[0] == version


def test_rpm_query_parser():
    found = _nvidia.parse_rpm_query(fixture_text("rpm/rocky9-550.54.14.txt"))
    assert found == {
        "nvidia-driver": "3:550.54.14-1.el9",
        "nvidia-driver-cuda": "3:550.54.14-1.el9",
        "kmod-nvidia-latest-dkms": "3:550.54.14-1.el9",
    }


def test_smi_csv_single_h100():
    rows = _nvidia.parse_smi_csv(fixture_text("smi/h100-580.95.05.csv"), _nvidia.SMI_FIELDS)
    assert rows == [{
        "index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-5c9a3b1e-6a7f-4f5e-9c1d-2b8e0f3a4d11",
        "pci": "0000:17:00.0", "memory_total_mib": 81559, "driver_version": "580.95.05",
        "persistence_mode": True, "compute_cap": "9.0",
    }]


def test_smi_csv_eight_h200_and_not_supported_fields():
    rows = _nvidia.parse_smi_csv(fixture_text("smi/h200x8-570.172.08.csv"), _nvidia.SMI_FIELDS)
    assert [r["index"] for r in rows] == list(range(8))
    assert rows[1]["pci"] == "0000:2a:00.0" and rows[7]["pci"] == "0000:db:00.0"
    assert {r["memory_total_mib"] for r in rows} == {143771}
    odd = _nvidia.parse_smi_csv("0, NVIDIA A100, [N/A], 00000000:01:00.0, [N/A], 550.54.14, [Not Supported], 8.0\n", _nvidia.SMI_FIELDS)
    assert odd[0]["uuid"] is None and odd[0]["memory_total_mib"] is None and odd[0]["persistence_mode"] is None


def test_smi_banner_cuda_version():
    assert _nvidia.parse_smi_cuda_version(fixture_text("smi/banner-580.95.05.txt")) == "13.0"
    assert _nvidia.parse_smi_cuda_version("garbage") is None


@pytest.mark.parametrize(
    "raw, expected",
    [("00000000:17:00.0", "0000:17:00.0"), ("00000001:DB:00.0", "0001:db:00.0"), ("0000:3a:00.1", "0000:3a:00.1"), (None, None)],
)
def test_normalize_pci(raw, expected):
    assert _nvidia.normalize_pci(raw) == expected
