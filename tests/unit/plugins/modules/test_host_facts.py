# SPDX-License-Identifier: GPL-3.0-or-later
"""The host_facts module itself: arguments, exit_json shape, errors."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.modules import host_facts
from mlhost_testlib import Link, fixture_text


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            host_facts.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_rocky9_tree_with_an_h100_and_550_loaded(tree, capsys):
    base = "sys/bus/pci/devices/0000:17:00.0"
    root = tree({
        "etc/os-release": fixture_text("os-release/rocky9"),
        f"{base}/vendor": "0x10de\n", f"{base}/device": "0x2330\n", f"{base}/class": "0x030200\n",
        f"{base}/driver": Link("../../../../bus/pci/drivers/nvidia"),
        "proc/modules": fixture_text("proc/modules-nvidia"),
        "proc/driver/nvidia/version": fixture_text("proc/nvidia-version-550-rocky"),
    })
    code, result = run_module(capsys, {"sysroot": str(root)})
    assert code == 0 and result["changed"] is False
    facts = result["ansible_facts"]["mlhost"]
    assert facts["distro"]["id"] == "rocky" and facts["pkg_mgr"] == "dnf"
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA H100 SXM5 80GB"]
    assert facts["nvidia"]["loaded_version"] == "550.54.14"
    assert facts["nvidia"]["smi_status"] == "skipped: sysroot is not the live system"


def test_check_mode_returns_the_same_facts(tree, capsys):
    root = tree({"etc/os-release": fixture_text("os-release/debian12")})
    code, normal = run_module(capsys, {"sysroot": str(root)})
    code, checked = run_module(capsys, {"sysroot": str(root), "_ansible_check_mode": True})
    assert normal["ansible_facts"] == checked["ansible_facts"]


def test_missing_sysroot_fails_with_the_fix(tmp_path, capsys):
    code, result = run_module(capsys, {"sysroot": str(tmp_path / "nope")})
    assert code == 1 and result["failed"] is True
    assert "is not a directory" in result["msg"] and "sysroot" in result["msg"]


def test_smi_timeout_must_be_positive(tmp_path, capsys):
    code, result = run_module(capsys, {"smi_timeout": 0})
    assert code == 1 and "smi_timeout must be at least 1" in result["msg"]
