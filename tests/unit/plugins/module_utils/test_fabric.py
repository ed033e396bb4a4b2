# SPDX-License-Identifier: GPL-3.0-or-later
"""host_facts' GPU node facts: NVSwitches, platform, NVLink generation, fabric service, compute capability.

The four nodes are the hand-made stand-in sysroots of tests/unit/gpu_nodes.py (built from the PCI ids, not captured);
the nvidia-smi CSV lines are stand-ins written here in the format of
``nvidia-smi --query-gpu=... --format=csv,noheader,nounits``.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _host, _nvidia, _python_env
from ansible_collections.mlinfra.mlhost.plugins.module_utils._gpu_ids import (
    ARCHITECTURE_NVLINK,
    GPU_COMPUTE_CAPABILITIES,
    GPU_FORM_FACTORS,
    NVIDIA_GPUS,
    NVSWITCHES,
)
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import ARCHITECTURE_MIN_CC
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import SMI_FIELDS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

import gpu_nodes
from mlhost_testlib import FakeRun, fixture_text

SMI_QUERY = ("nvidia-smi", "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits")


def gather(path, run=None):
    facts = _host.gather(Sysroot(str(path)), run or FakeRun(), "/nonexistent")
    json.dumps(facts)
    return facts


def node(tree, name, extra=None):
    files = gpu_nodes.NODES[name]()
    files.update(extra or {})
    return gather(tree(files))


def test_hgx_h100(tree):
    facts = node(tree, "hgx_h100")
    nv = facts["nvidia"]
    assert nv["gpu_count"] == 8 and nv["nvswitch_count"] == 4
    assert [s["pci"] for s in nv["nvswitches"]] == ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0"]
    assert nv["nvswitches"][0] == {"pci": "0000:05:00.0", "device_id": "22a3", "name": "NVIDIA NVSwitch (3rd generation, LS10)",
                                   "generation": 3, "nvlink": 4, "kernel_driver": "nvidia"}
    assert nv["platform"] == "sxm" and nv["nvlink_generation"] == 4 and nv["fabric_service"] == "fabric_manager"
    assert nv["nvlink5_management_ports"] == []
    assert {(g["form_factor"], g["compute_capability"], g["compute_capability_source"]) for g in facts["gpus"]} == {
        ("sxm", "9.0", "table")}
    assert nv["min_compute_capability"] == "9.0"


def test_pcie_l40s(tree):
    facts = node(tree, "pcie_l40s")
    nv = facts["nvidia"]
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA L40S", "NVIDIA L40S"]  # the ASPEED VGA is not NVIDIA's
    assert nv["nvswitch_count"] == 0 and nv["nvswitches"] == [] and nv["nvlink5_management_ports"] == []
    assert nv["platform"] == "pcie" and nv["nvlink_generation"] is None and nv["fabric_service"] == "none"
    assert nv["min_compute_capability"] == "8.9" and facts["gpus"][0]["form_factor"] == "pcie"


def test_gb200(tree):
    facts = node(tree, "gb200")
    nv = facts["nvidia"]
    assert facts["arch"] == "aarch64"
    assert [g["pci"] for g in facts["gpus"]] == ["0008:01:00.0", "0009:01:00.0", "0018:01:00.0", "0019:01:00.0"]
    assert {g["name"] for g in facts["gpus"]} == {"NVIDIA GB200"}
    assert nv["nvswitch_count"] == 0 and nv["nvlink5_management_ports"] == []
    assert nv["platform"] == "superchip" and nv["nvlink_generation"] == 5 and nv["fabric_service"] == "imex"
    assert nv["min_compute_capability"] == "10.0"


def test_hgx_b200(tree):
    facts = node(tree, "hgx_b200")
    nv = facts["nvidia"]
    assert nv["gpu_count"] == 8 and {g["name"] for g in facts["gpus"]} == {"NVIDIA B200"}
    assert nv["nvswitch_count"] == 0  # 4th-generation NVSwitches are no NVIDIA PCI function on the host
    assert [p["infiniband"] for p in nv["nvlink5_management_ports"]] == ["mlx5_8", "mlx5_9", "mlx5_10", "mlx5_11"]
    assert nv["nvlink5_management_ports"][0] == {"pci": "0000:8a:00.0", "device_id": "1021", "infiniband": "mlx5_8",
                                                 "kernel_driver": "mlx5_core"}
    assert nv["platform"] == "sxm" and nv["nvlink_generation"] == 5 and nv["fabric_service"] == "fabric_manager_nvlsm"
    assert nv["min_compute_capability"] == "10.0"


def test_hgx_b200_without_a_readable_vpd_still_wants_nvlsm(tree):
    """Not root: sysfs's vpd is mode 0600. The B200 SXM modules alone say HGX B200, whose baseboard has NVSwitches."""
    files = {k: v for k, v in gpu_nodes.hgx_b200().items() if not k.endswith("/vpd")}
    nv = gather(tree(files))["nvidia"]
    assert nv["nvlink5_management_ports"] == [] and nv["fabric_service"] == "fabric_manager_nvlsm"
    assert nv["nvlink_generation"] == 5


def test_no_gpu_no_fabric(tree):
    nv = gather(tree(gpu_nodes.base_host()))["nvidia"]
    assert (nv["platform"], nv["fabric_service"], nv["nvswitch_count"], nv["nvlink_generation"]) == ("none", "none", 0, None)
    assert nv["min_compute_capability"] is None


def test_shared_nvswitch_service_vm(tree):
    """Fabric Manager's shared NVSwitch model: the service VM holds the switches, the GPUs are in the guests."""
    files = gpu_nodes.base_host()
    for bus in ("05", "06"):
        files.update(gpu_nodes.pci(f"0000:{bus}:00.0", "10de", "22a3", "0x068000"))
    nv = gather(tree(files))["nvidia"]
    assert nv["nvswitch_count"] == 2 and nv["platform"] == "none" and nv["fabric_service"] == "fabric_manager"


def test_hgx_a100(tree):
    files = gpu_nodes.base_host()
    for i, bus in enumerate(("07", "0f", "47", "4e", "87", "90", "b7", "bd")):
        files.update(gpu_nodes.pci(f"0000:{bus}:00.0", "10de", "20b2", "0x030200"))
    for n in range(6):
        files.update(gpu_nodes.pci(f"0000:c{n}:00.0", "10de", "1af1", "0x068000"))
    nv = gather(tree(files))["nvidia"]
    assert nv["nvswitch_count"] == 6 and {s["generation"] for s in nv["nvswitches"]} == {2}
    assert nv["platform"] == "sxm" and nv["nvlink_generation"] == 3 and nv["fabric_service"] == "fabric_manager"
    assert nv["min_compute_capability"] == "8.0"


def test_unknown_nvswitch_id_is_counted_with_an_unknown_generation(tree):
    files = gpu_nodes.hgx_h100()
    files.update(gpu_nodes.pci("0000:09:00.0", "10de", "2f99", "0x068000"))
    nv = gather(tree(files))["nvidia"]
    assert nv["nvswitch_count"] == 5
    unknown = nv["nvswitches"][-1]
    assert unknown["pci"] == "0000:09:00.0" and unknown["device_id"] == "2f99"
    assert unknown["generation"] is None and unknown["nvlink"] is None and "unknown generation" in unknown["name"]
    assert nv["nvlink_generation"] == 4 and nv["fabric_service"] == "fabric_manager"


def test_unknown_gpu_beside_an_unknown_nvswitch_is_sxm(tree):
    files = gpu_nodes.base_host()
    files.update(gpu_nodes.pci("0000:18:00.0", "10de", "2f00", "0x030200"))
    files.update(gpu_nodes.pci("0000:05:00.0", "10de", "2f99", "0x068000"))
    nv = gather(tree(files))["nvidia"]
    assert nv["platform"] == "sxm" and nv["nvlink_generation"] is None and nv["fabric_service"] == "fabric_manager"


def test_unknown_gpu_alone_is_of_an_unknown_platform(tree):
    alone = gather(tree({**gpu_nodes.base_host(), **gpu_nodes.pci("0000:18:00.0", "10de", "2f00", "0x030200")}))
    assert alone["nvidia"]["platform"] == "unknown" and alone["gpus"][0]["compute_capability"] is None


def test_laguna_bridge_functions_are_not_switches(tree):
    files = gpu_nodes.hgx_h100()
    files.update(gpu_nodes.pci("0000:05:00.1", "10de", "22ac", "0x068000"))  # LS10's non-transparent bridge function
    assert gather(tree(files))["nvidia"]["nvswitch_count"] == 4


@pytest.mark.parametrize("damage", [
    {"vendor": ""}, {"vendor": None}, {"vendor": "garbage\n"}, {"vendor": "0x10df\n"},
    {"class": ""}, {"class": None}, {"class": "0x0680\n"}, {"class": "bridge\n"}, {"class": "0x0680zz\n"},
    {"class": "0x060400\n"}, {"class": "\x00\xff\n"},
])
def test_hostile_sysfs_is_no_nvswitch(tree, damage):
    files = gpu_nodes.pcie_l40s()
    files.update(gpu_nodes.pci("0000:05:00.0", "10de", "22a3", "0x068000"))
    for name, content in damage.items():
        key = f"sys/bus/pci/devices/0000:05:00.0/{name}"
        if content is None:
            del files[key]
        else:
            files[key] = content
    nv = gather(tree(files))["nvidia"]
    assert nv["nvswitch_count"] == 0 and nv["fabric_service"] == "none"


@pytest.mark.parametrize("device", ["", "garbage\n", "0x22a3a3\n", None])
def test_hostile_device_id_still_an_nvswitch(tree, device):
    """Vendor and class say NVSwitch; a device id that cannot be read is no known generation, and no crash."""
    files = gpu_nodes.pcie_l40s()
    files.update(gpu_nodes.pci("0000:05:00.0", "10de", "22a3", "0x068000"))
    if device is None:
        del files["sys/bus/pci/devices/0000:05:00.0/device"]
    else:
        files["sys/bus/pci/devices/0000:05:00.0/device"] = device
    switch, = gather(tree(files))["nvidia"]["nvswitches"]
    assert switch["device_id"] is None and switch["generation"] is None


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"SW_MN", b"\xff" * 40000 + b"SW_MNG"])
def test_hostile_vpd_is_no_management_port(tree, content):
    files = gpu_nodes.hgx_b200()
    for key in [k for k in files if k.endswith("/vpd")]:
        files[key] = content
    assert gather(tree(files))["nvidia"]["nvlink5_management_ports"] == []


def test_a_vpd_is_read_only_beside_an_nvidia_gpu(tree):
    gpu_dirs = tuple(f"sys/bus/pci/devices/0000:{bus}:00.0/" for bus in gpu_nodes.B200_BUSES)
    files = {k: v for k, v in gpu_nodes.hgx_b200().items() if not k.startswith(gpu_dirs)}
    nv = gather(tree(files))["nvidia"]
    assert nv["gpu_count"] == 0 and nv["nvlink5_management_ports"] == [] and nv["fabric_service"] == "none"


def smi_rows(buses, name, cap, driver="580.95.05"):
    return "".join(f"{i}, {name}, GPU-00000000-0000-0000-0000-0000000000{i:02d}, 00000000:{bus.upper()}:00.0, 81559, "
                   f"{driver}, Enabled, {cap}\n" for i, bus in enumerate(buses))


def live_gather(tree, monkeypatch, files, smi_text):
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    files["proc/driver/nvidia/version"] = fixture_text("proc/nvidia-version-580-open")
    run = FakeRun({SMI_QUERY: (0, smi_text, ""), ("nvidia-smi",): (0, fixture_text("smi/banner-580.95.05.txt"), "")})
    return gather(tree(files), run)


def test_nvidia_smi_compute_cap_wins_over_the_table(tree, monkeypatch):
    """A GPU the table does not know (a GB300 stand-in id) gets nvidia-smi's 10.3; known ones say where theirs came from."""
    files = gpu_nodes.hgx_h100()
    files.update(gpu_nodes.pci("0000:e0:00.0", "10de", "31c2", "0x030200"))
    facts = live_gather(tree, monkeypatch, files, smi_rows(gpu_nodes.H100_BUSES, "NVIDIA H100 80GB HBM3", "9.0")
                        + "8, NVIDIA GB300 stand-in, GPU-x, 00000000:E0:00.0, 1, 580.95.05, Enabled, 10.3\n")
    by_pci = {g["pci"]: g for g in facts["gpus"]}
    assert by_pci["0000:e0:00.0"]["compute_capability"] == "10.3"
    assert {g["compute_capability_source"] for g in facts["gpus"]} == {"nvidia-smi"}
    assert facts["nvidia"]["min_compute_capability"] == "9.0"


@pytest.mark.parametrize("cap", ["[N/A]", "garbage", "9", "9.0.1", ""])
def test_an_unusable_smi_compute_cap_keeps_the_table(tree, monkeypatch, cap):
    facts = live_gather(tree, monkeypatch, gpu_nodes.hgx_h100(), smi_rows(gpu_nodes.H100_BUSES, "NVIDIA H100", cap))
    assert {(g["compute_capability"], g["compute_capability_source"]) for g in facts["gpus"]} == {("9.0", "table")}


def test_smi_of_an_old_driver_without_compute_cap(tree, monkeypatch):
    """Drivers before 510 refuse the field: host_facts asks again without it; the table answers."""
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    fields = [f for f in SMI_FIELDS if f != "compute_cap"]
    old_query = ("nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits")
    rows = "".join(f"{i}, Tesla V100-SXM2-16GB, GPU-{i}, 00000000:{b}:00.0, 16160, 470.256.02, Enabled\n"
                   for i, b in enumerate(("1A", "1B")))
    run = FakeRun({SMI_QUERY: (2, 'Field "compute_cap" is not a valid field to query.', ""), old_query: (0, rows, ""),
                   ("nvidia-smi",): (1, "", "")})
    files = gpu_nodes.base_host()
    for bus in ("1a", "1b"):
        files.update(gpu_nodes.pci(f"0000:{bus}:00.0", "10de", "1db1", "0x030200"))
    facts = gather(tree(files), run)
    assert facts["nvidia"]["smi_status"] == "ok"
    assert {(g["compute_capability"], g["compute_capability_source"]) for g in facts["gpus"]} == {("7.0", "table")}
    assert facts["nvidia"]["platform"] == "sxm" and facts["nvidia"]["fabric_service"] == "none"  # 2 V100 SXM2, no switch
    assert facts["nvidia"]["nvlink_generation"] == 2


# The data: every GPU has a compute capability at or above its architecture's lowest, ids are lower-case hex.
def test_every_gpu_has_a_compute_capability_of_its_architecture():
    assert set(GPU_COMPUTE_CAPABILITIES) == set(NVIDIA_GPUS)
    for device, (name, arch) in NVIDIA_GPUS.items():
        cc = _nvidia.cc_key(GPU_COMPUTE_CAPABILITIES[device])
        assert ARCHITECTURE_MIN_CC[arch] <= cc, (device, name)
        assert arch in ARCHITECTURE_NVLINK or arch in ("maxwell", "turing", "ada"), arch


@pytest.mark.parametrize("device, cc", [
    ("20b2", "8.0"), ("20b7", "8.0"), ("2236", "8.6"), ("2235", "8.6"), ("2230", "8.6"), ("26b9", "8.9"), ("2330", "9.0"),
    ("2342", "9.0"), ("2901", "10.0"), ("2941", "10.0"), ("3182", "10.3"), ("2bb5", "12.0"), ("1eb8", "7.5"),
    ("1db6", "7.0"), ("1b38", "6.1"), ("15f8", "6.0"), ("13f2", "5.2"),
])
def test_compute_capability_table(device, cc):
    assert GPU_COMPUTE_CAPABILITIES[device] == cc


@pytest.mark.parametrize("device, form", [
    ("2330", "sxm"), ("2331", "pcie"), ("2321", "pcie"), ("233b", "pcie"), ("2335", "sxm"), ("2342", "superchip"),
    ("2941", "superchip"), ("2901", "sxm"), ("20b2", "sxm"), ("20b5", "pcie"), ("26b9", "pcie"), ("1db1", "sxm"),
])
def test_form_factor_table(device, form):
    assert GPU_FORM_FACTORS[device] == form


def test_form_factors_name_known_gpus_only():
    assert set(GPU_FORM_FACTORS) <= set(NVIDIA_GPUS)
    assert set(GPU_FORM_FACTORS.values()) == {"pcie", "sxm", "superchip"}


def test_nvswitch_ids():
    assert NVSWITCHES["1af1"][:2] == (2, 3) and NVSWITCHES["22a3"][:2] == (3, 4)
    assert all(len(k) == 4 and k == k.lower() and int(k, 16) >= 0 for k in NVSWITCHES)
    assert not set(NVSWITCHES) & set(NVIDIA_GPUS)


@pytest.mark.parametrize("gpu, cc", [
    ({"architecture": "ampere", "compute_capability": "8.6"}, (8, 6)),  # an A10: its own, not Ampere's lowest 8.0
    ({"architecture": "pascal", "compute_capability": "6.1"}, (6, 1)),
    ({"architecture": "ampere"}, (8, 0)),  # no compute capability: the architecture's lowest, as before
    ({"architecture": "hopper", "compute_capability": "garbage"}, (9, 0)),
    ({"architecture": None, "compute_capability": None}, None),
    ({"architecture": None, "compute_capability": "10.3"}, (10, 3)),
])
def test_python_env_reads_the_gpus_own_compute_capability(gpu, cc):
    assert _python_env._gpu_cc(gpu) == cc
