# SPDX-License-Identifier: GPL-3.0-or-later
"""GPU health on nvidia-smi -q output and kernel logs.

The fixtures in fixtures/smi_q/ are STAND-INS, hand-written in the layout nvidia-smi -q prints (field names and
nesting as R470 and R550-R580 drivers print them; no GPU machine was at hand): an HGX H100 node healthy, with ECC
errors and a pending row remapping on one GPU, and with its NVSwitch fabric not started; a PCIe L40S node with a
link trained at x8 and persistence off; a V100 node in R470's older ECC layout with a retired page pending; a
kernel log with application Xids and GPU-fault Xids. Replace them with captures when a GPU machine is lent.
"""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _gpu_health as gh
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _stack_check
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from mlhost_testlib import fixture_text


def smi(name):
    return gh.parse_smi_q(fixture_text(f"smi_q/{name}.txt"))


def named(checks):
    return {c["name"]: c for c in checks}


def test_the_tree_keeps_bus_ids_with_colons_as_values_and_gpu_headers_as_sections():
    tree = gh.parse_tree("Attached GPUs : 1\nGPU 00000000:18:00.0\n    Bus Id      : 00000000:18:00.0\n"
                         "    Fabric\n        State : Completed\n    Persistence Mode : Enabled\n")
    assert tree["GPU 00000000:18:00.0"]["Bus Id"] == "00000000:18:00.0"
    assert tree["GPU 00000000:18:00.0"]["Fabric"] == {"State": "Completed"}
    assert tree["GPU 00000000:18:00.0"]["Persistence Mode"] == "Enabled"


def test_a_healthy_hgx_h100_node():
    data = smi("hgx-h100-healthy")
    assert data["driver_version"] == "580.95.05" and data["cuda_version"] == "13.0" and data["attached_gpus"] == 8
    assert [g["bus_id"] for g in data["gpus"]][:2] == ["00000000:18:00.0", "00000000:2a:00.0"]
    first = data["gpus"][0]
    assert (first["ecc_volatile_uncorrectable"], first["link_width_max"], first["link_width_current"]) == (0, 16, 16)
    assert (first["fabric_state"], first["fabric_status"], first["remapping_pending"]) == ("Completed", "Success", "No")
    checks = named(gh.assess(data, [], None, 8, 8, True))
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    assert list(checks) == ["gpu_count", "ecc", "retired_pages", "remapped_rows", "pcie_link", "persistence_mode", "fabric", "xid"]
    assert checks["fabric"]["detail"] == "8 GPU(s): fabric Completed / Success"


def test_ecc_errors_and_a_pending_remap_fail_naming_the_gpu():
    checks = named(gh.assess(smi("hgx-h100-ecc-errors"), [], None, 8, 0, True))
    assert not checks["ecc"]["ok"] and checks["ecc"]["detail"] == "0000:5d:00.0: 2 uncorrectable ECC error(s) since the driver loaded"
    assert not checks["remapped_rows"]["ok"] and "0000:5d:00.0: a row remapping is pending" in checks["remapped_rows"]["detail"]
    assert [g["ok"] for g in checks["ecc"]["gpus"]].count(False) == 1
    assert checks["pcie_link"]["ok"] and checks["fabric"]["ok"]


def test_a_fabric_that_is_not_started_fails_every_gpu():
    checks = named(gh.assess(smi("hgx-h100-fabric-not-started"), [], None, 8, 8, True))
    assert not checks["fabric"]["ok"]
    assert checks["fabric"]["detail"].startswith("0000:18:00.0: fabric Not Started / N/A: start nvidia-fabricmanager")
    assert sum(not g["ok"] for g in checks["fabric"]["gpus"]) == 8


def test_a_pcie_node_has_no_fabric_check_and_a_short_link_fails():
    data = smi("pcie-l40s-degraded")
    checks = named(gh.assess(data, [], None, 2, 0, False))
    assert "fabric" not in checks
    assert not checks["pcie_link"]["ok"]
    assert checks["pcie_link"]["detail"] == ("0000:18:00.0: PCIe link trained at x8 of x16, gen 1 of 4: reseat the GPU or check "
                                             "the riser/slot")
    # The second GPU's link idles at gen 1 of 4 at full width: power saving, not a fault.
    assert checks["pcie_link"]["gpus"][1] == {"pci": "0000:2a:00.0", "ok": True, "detail": "PCIe x16 of x16, gen 1 of 4"}
    assert not checks["persistence_mode"]["ok"] and "0000:2a:00.0: persistence mode disabled" in checks["persistence_mode"]["detail"]


def test_the_older_ecc_layout_and_retired_pages():
    data = smi("v100-r470-retired")
    assert [g["ecc_volatile_uncorrectable"] for g in data["gpus"]] == [0, 1]
    assert [g["retired_double_bit"] for g in data["gpus"]] == [0, 1]
    checks = named(gh.assess(data, [], None, 2, 2, False))
    assert not checks["ecc"]["ok"] and not checks["retired_pages"]["ok"]
    assert checks["retired_pages"]["detail"] == "0000:2a:00.0: a page retirement is pending: reset the GPU or reboot"
    assert checks["remapped_rows"]["ok"]  # Volta has no row remapping: reported as such, not failed
    assert "not reported (before Ampere)" in checks["remapped_rows"]["gpus"][0]["detail"]


def test_xids_split_into_gpu_faults_and_application_faults():
    xids = gh.parse_xids(fixture_text("smi_q/kernel-log-xid.txt"))
    assert [(x["pci"], x["xid"]) for x in xids] == [("0000:18:00", 13), ("0000:18:00", 43), ("0000:5d:00", 79), ("0000:9a:00", 94)]
    check = gh._xid_check(xids, None, [])
    assert not check["ok"] and check["detail"].startswith("2 Xid error(s) since boot that mean a GPU fault: 0000:5d:00: Xid 79")
    benign = gh._xid_check(xids[:2], None, [])
    assert benign["ok"] and benign["detail"] == "Xid 13, 43 since boot (application faults, not the GPU's)"


def test_what_cannot_be_read_is_never_healthy():
    assert not gh._xid_check(None, "journalctl: not found; dmesg: Operation not permitted", [])["ok"]
    empty = gh.parse_smi_q("")
    checks = named(gh.assess(empty, [], None, 8, 0, True))
    assert not checks["gpu_count"]["ok"] and not checks["ecc"]["ok"] and not checks["fabric"]["ok"]
    assert checks["ecc"]["detail"] == "no GPU to check (nvidia-smi listed none)."
    # A GPU whose link width and ECC counters are not printed: failed, not assumed fine.
    gpu = dict(smi("hgx-h100-healthy")["gpus"][0], link_width_current=None, ecc_volatile_uncorrectable=None,
               ecc_aggregate_uncorrectable=None)
    assert gh._pcie_link(gpu) == (False, "the PCIe link width was not readable")
    assert gh._ecc(gpu) == (False, "ECC is enabled but no uncorrectable-error counter was readable")


def test_the_gpu_count_against_the_bus_and_the_expected_number():
    data = smi("hgx-h100-healthy")
    assert named(gh.assess(data, [], None, 9, 0, True))["gpu_count"]["ok"] is False   # one on the bus is missing
    assert named(gh.assess(data, [], None, 8, 8, True))["gpu_count"]["ok"] is True
    short = named(gh.assess(data, [], None, 8, 16, True))["gpu_count"]
    assert short["ok"] is False and short["detail"] == "nvidia-smi lists 8 GPU(s), the PCI bus 8; 16 expected (expected_gpus)."


@pytest.mark.parametrize("hostile", ["\x00\x01\x02", "GPU 00000000:18:00.0\n" + "    x : y\n" * 5000, "   : : :\n\t\t:\n",
                                     "GPU zz\n    Fabric\n        State : Completed\n", "=" * 10000])
def test_hostile_text_is_parsed_without_crashing(hostile):
    data = gh.parse_smi_q(hostile)
    assert isinstance(data["gpus"], list)
    gh.assess(data, gh.parse_xids(hostile), None, 1, 0, False)


@pytest.mark.parametrize("value", [-1, 1025, True, "8", 2.0])
def test_expected_gpus_must_be_a_small_whole_number(value):
    with pytest.raises(ModuleError, match="expected_gpus must be a whole number"):
        _stack_check.check_options({"checks": [], "timeout": 60, "framework": "auto", "expected_gpus": value})
