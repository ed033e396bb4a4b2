# SPDX-License-Identifier: GPL-3.0-or-later
"""mig_layout on fixture trees with faked commands; nvidia-smi mig -lgi parsing (hand-written output, see
tests/unit/fixtures/mig/README.md). The GPU lists are host_facts' shape, with NVIDIA's real PCI device ids."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _mig
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._mig import MigLayoutWorker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, build_tree, fixture_text, make_host, run_worker, snapshot

H100 = {"device_id": "2330", "name": "NVIDIA H100 SXM5 80GB", "architecture": "hopper"}
L40S = {"device_id": "26b9", "name": "NVIDIA L40S", "architecture": "ada"}
A30 = {"device_id": "20b7", "name": "NVIDIA A30", "architecture": "ampere"}
GB200 = {"device_id": "2941", "name": "NVIDIA GB200", "architecture": "blackwell"}
MIG_PARTED = "/usr/bin/nvidia-mig-parted"
CONFIG = "etc/nvidia-mig-manager/mlhost-config.yaml"
DROPIN = "etc/systemd/system/nvidia-mig-manager.service.d/zz-mlhost.conf"


def gpus(*models):
    return [dict(model, pci=f"0000:{0x17 + 0x10 * i:02x}:00.0") for i, model in enumerate(models)]


def tree(tmp_path, loaded=True, extra=None):
    files = {"usr/lib/systemd/system/nvidia-mig-manager.service": "[Unit]\nDescription=Configure MIG on NVIDIA GPUs\n",
             "etc/systemd/system/nvidia-mig-manager.service.d/override.conf":
                 '[Service]\nEnvironment="MIG_PARTED_SELECTED_CONFIG=all-disabled"\n'}
    if loaded:
        files["proc/driver/nvidia/version"] = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05\n"
    files.update(extra or {})
    return build_tree(tmp_path, files)


def assert_cmd(root, rc=0, err=""):
    return (MIG_PARTED, "assert", "-f", str(root / CONFIG), "-c", "mlhost"), (rc, "", err)


def run(root, layout, gpu_list, responses=None, check=False, programs=None):
    runner = FakeRunner(responses or {}, programs if programs is not None else {"nvidia-mig-parted": MIG_PARTED})
    host = make_host({"layout": layout, "gpus": gpu_list, "apply": True}, runner, check_mode=check, sysroot=Sysroot(str(root)))
    return run_worker(MigLayoutWorker, host), runner


SYSTEMCTL = {("systemctl", "daemon-reload"): (0, "", ""), ("systemctl", "enable", "nvidia-mig-manager.service"): (0, "", ""),
             ("systemctl", "restart", "nvidia-mig-manager.service"): (0, "", "")}


def test_first_run_writes_applies_and_asserts_then_rerun_changes_nothing(tmp_path):
    root = tree(tmp_path)
    key, answer = assert_cmd(root)
    result, runner = run(root, {"2330": {"1g.10gb": 7}}, gpus(H100, H100), {**SYSTEMCTL, key: (0, "", "")})
    assert result["changed"] and result["state"] == "applied"
    config = (root / CONFIG).read_text()
    assert config.startswith("# Written by mlinfra.mlhost")
    assert "version: v1\nmig-configs:\n  mlhost:\n    - devices: all\n      mig-enabled: true\n" in config
    assert '        "1g.10gb": 7\n' in config
    dropin = (root / DROPIN).read_text()
    assert f'MIG_PARTED_CONFIG_FILE={_mig.CONFIG_PATH}' in dropin and "MIG_PARTED_SELECTED_CONFIG=mlhost" in dropin
    assert ["systemctl", "restart", "nvidia-mig-manager.service"] in runner.calls
    # The package's own override.conf is untouched, and ours sorts after it (systemd: the last Environment= wins).
    assert "all-disabled" in (root / "etc/systemd/system/nvidia-mig-manager.service.d/override.conf").read_text()
    assert sorted(["override.conf", "zz-mlhost.conf"])[-1] == "zz-mlhost.conf"
    again, runner = run(root, {"2330": {"1g.10gb": 7}}, gpus(H100, H100), {key: (0, "", "")})
    assert not again["changed"] and again["state"] == "applied" and again["applied"] is True
    assert runner.calls == [list(key)]


def test_layout_drifted_on_the_host_is_applied_again(tmp_path):
    root = tree(tmp_path)
    key, dummy = assert_cmd(root)
    run(root, {"all": {"3g.40gb": 2}}, gpus(H100), {**SYSTEMCTL, key: (0, "", "")})
    result, runner = run(root, {"all": {"3g.40gb": 2}}, gpus(H100),
                         {**SYSTEMCTL, key: [(1, "", "Assertion failure: selected configuration not currently applied"), (0, "", "")]})
    assert result["changed"] and result["state"] == "applied"
    assert ["systemctl", "restart", "nvidia-mig-manager.service"] in runner.calls


def test_check_mode_is_the_plan_and_changes_nothing(tmp_path):
    root = tree(tmp_path)
    before = snapshot(root)
    result, runner = run(root, {"all": {"1g.10gb": 7}}, gpus(H100), check=True)
    assert result["changed"] and result["state"] == "changed" and runner.calls == []
    assert result["diff"][0]["after"].count("1g.10gb") == 1
    assert snapshot(root) == before


def test_without_the_driver_the_files_wait_for_the_next_boot(tmp_path):
    root = tree(tmp_path, loaded=False)
    result, runner = run(root, {"all": "enabled"}, gpus(H100), SYSTEMCTL)
    assert result["changed"] and result["state"] == "written"
    assert ["systemctl", "restart", "nvidia-mig-manager.service"] not in runner.calls
    assert "mig-devices: {}" in (root / CONFIG).read_text()
    again, dummy = run(root, {"all": "enabled"}, gpus(H100))
    assert not again["changed"]


def test_mixed_node_all_skips_gpus_without_mig_and_specific_keys_win(tmp_path):
    root = tree(tmp_path)
    key, dummy = assert_cmd(root)
    layout = {"all": {"1g.10gb": 7}, "0000:27:00.0": "disabled"}
    result, dummy = run(root, layout, gpus(H100, H100, L40S), {**SYSTEMCTL, key: (0, "", "")})
    assert result["layout"] == {"0": {"1g.10gb": 7}, "1": "disabled"}
    config = (root / CONFIG).read_text()
    assert "- devices: [0]\n      mig-enabled: true" in config and "- devices: [1]\n      mig-enabled: false" in config
    assert "[2]" not in config


def test_no_gpu_with_mig_needs_no_mig_manager(tmp_path):
    root = tree(tmp_path)
    result, runner = run(root, {"all": {"1g.10gb": 7}}, gpus(L40S), programs={})
    assert not result["changed"] and result["state"] == "no_layout" and runner.calls == []
    assert not (root / CONFIG).exists()


@pytest.mark.parametrize("layout, models, words", [
    ({"26b9": {"1g.10gb": 1}}, (L40S,), "has no MIG"),
    ({"all": {"1g.5gb": 7}}, (H100,), "has no MIG profile '1g.5gb'"),
    ({"all": {"1g.10gb": 8}}, (H100,), "whole number of instances from 1 to 7, got 8"),
    ({"all": {"3g.40gb": 3}}, (H100,), "at most 2 instance"),
    ({"all": {"4g.40gb": 1, "3g.40gb": 1, "1g.10gb": 1}}, (H100,), "needs 8 compute"),
    ({"all": {"1g.10gb+me": 1, "1g.20gb": 4}}, (H100,), "needs 5 compute and 9 memory"),
    ({"all": {"2g.12gb": 2, "1g.6gb": 1}}, (A30,), "needs 5 compute"),
    ({"all": {"1g.10gb": True}}, (H100,), "whole number"),
    ({"all": {"1g.10gb": "7"}}, (H100,), "whole number"),
    ({"all": {"1g.10gb; rm -rf /": 1}}, (H100,), "not a MIG profile name"),
    ({"all": ["1g.10gb"]}, (H100,), "must be disabled, enabled or a mapping"),
    ({"NVIDIA H100 SXM5 80G": {"1g.10gb": 7}}, (H100,), "Check its spelling"),
    ({"All": "disabled", "all": "enabled"}, (H100,), "twice"),
    ("1g.10gb", (H100,), "must be a mapping of GPU"),
    ({"all\n": {"1g.10gb": 1}, "x\x00": {}}, (H100,), "not a GPU selector"),
])
def test_refusals_name_the_problem_and_change_nothing(tmp_path, layout, models, words):
    import re
    root = tree(tmp_path)
    before = snapshot(root)
    with pytest.raises(ModuleError) as caught:
        run(root, layout, gpus(*models))
    assert re.search(words, caught.value.msg), caught.value.msg
    assert caught.value.msg.endswith("Nothing was changed.")
    assert snapshot(root) == before


def test_a_layout_the_table_cannot_check_is_written_with_a_warning(tmp_path):
    root = tree(tmp_path, loaded=False)
    result, dummy = run(root, {"all": {"1g.23gb": 7}}, gpus(GB200), SYSTEMCTL)
    assert result["changed"] and any("not in the collection's table" in w for w in result["warnings"])


def test_missing_mig_manager_is_refused_with_the_fix(tmp_path):
    root = build_tree(tmp_path, {"proc/driver/nvidia/version": "NVRM version: 580.95.05\n"})
    with pytest.raises(ModuleError, match="nvidia-mig-manager package"):
        run(root, {"all": {"1g.10gb": 7}}, gpus(H100), programs={})


def test_validate_phase_checks_the_layout_before_the_manager_is_installed(tmp_path):
    root = build_tree(tmp_path, {"etc/hostname": "gpu1\n"})
    runner = FakeRunner({}, {})
    host = make_host({"layout": {"all": {"1g.10gb": 7}}, "gpus": gpus(H100), "require_manager": False}, runner,
                     check_mode=True, sysroot=Sysroot(str(root)))
    result = run_worker(MigLayoutWorker, host)
    assert result["changed"] and result["state"] == "manager_missing" and runner.calls == []
    host = make_host({"layout": {"all": {"1g.5gb": 7}}, "gpus": gpus(H100), "require_manager": False}, runner,
                     check_mode=True, sysroot=Sysroot(str(root)))
    with pytest.raises(ModuleError, match="no MIG profile"):
        run_worker(MigLayoutWorker, host)


def test_files_the_collection_did_not_write_are_left_alone(tmp_path):
    root = tree(tmp_path, extra={CONFIG: "version: v1\nmig-configs: {mine: []}\n"})
    before = snapshot(root)
    with pytest.raises(ModuleError, match="was not written by the collection"):
        run(root, {"all": {"1g.10gb": 7}}, gpus(H100))
    assert snapshot(root) == before


def test_a_failed_apply_says_so_with_the_service_log_hint(tmp_path):
    root = tree(tmp_path)
    key, dummy = assert_cmd(root)
    with pytest.raises(ModuleError, match="journalctl -u nvidia-mig-manager.service"):
        run(root, {"all": {"1g.10gb": 7}}, gpus(H100), {**SYSTEMCTL, key: (1, "", "Assertion failure")})


def test_every_tabled_profile_set_fits_its_own_whole_gpu():
    for device, (profiles, compute, memory) in _mig.GPU_PROFILES.items():
        whole = [name for name, (c, m, most) in profiles.items() if c == compute]
        assert len(whole) == 1 and profiles[whole[0]][1] == memory, device
        for name, (c, m, most) in profiles.items():
            assert _mig.PROFILE_NAME.fullmatch(name), name
            assert c * min(most, compute // c) <= compute, (device, name)


def test_parse_lgi_counts_instances_per_gpu():
    found = _mig.parse_lgi(fixture_text("mig/lgi-h100-7x1g.txt"))
    assert found == {0: {"1g.10gb": 7}, 1: {"3g.40gb": 2, "1g.10gb": 1}}
    assert _mig.parse_lgi(fixture_text("mig/lgi-none.txt")) == {}
    assert _mig.compare_lgi({0: {"1g.10gb": 7}, 1: {"3g.40gb": 2, "1g.10gb": 1}}, found) == []
    problems = _mig.compare_lgi({0: {"1g.10gb": 7}, 1: {"7g.80gb": 1}}, found)
    assert problems == ["GPU 1: MIG instances 1g.10gb x1, 3g.40gb x2, the layout wants 7g.80gb x1"]
