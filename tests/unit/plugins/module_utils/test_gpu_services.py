# SPDX-License-Identifier: GPL-3.0-or-later
"""Fabric manager / NVLSM / IMEX / DCGM package decisions with NVIDIA's real names, and the dcgmi diag parser.

fixtures/dcgmi/ are HAND-WRITTEN in the layout of NVIDIA's documented dcgmi diag output (see the fixtures README).
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _gpu_services as gs
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "dcgmi")


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("family,branch,service,expected", [
    ("debian", "550", "fabric_manager", ["nvidia-fabricmanager-550", "libnvidia-nscq-550"]),
    ("debian", "570", "fabric_manager", ["nvidia-fabricmanager-570", "libnvidia-nscq-570"]),
    ("debian", "580", "fabric_manager", ["nvidia-fabricmanager", "libnvidia-nscq"]),
    ("debian", "590", "fabric_manager_nvlsm", ["nvidia-fabricmanager", "libnvidia-nscq", "nvlsm"]),
    ("debian", "580", "imex", ["nvidia-imex"]),
    ("debian", "570", "imex", ["nvidia-imex-570"]),
    ("redhat", "550", "fabric_manager", ["nvidia-fabric-manager", "libnvidia-nscq-550"]),
    ("redhat", "590", "fabric_manager", ["nvidia-fabric-manager", "libnvidia-nscq"]),
    ("debian", "580", "none", []),
])
def test_fabric_packages_real_names(family, branch, service, expected):
    assert gs.fabric_packages(family, branch, service) == expected


@pytest.mark.parametrize("branch", ["58", "5800", "580; rm -rf /", "", None, 580, "../580", "580\n"])
def test_fabric_packages_hostile_branch(branch):
    with pytest.raises(ModuleError):
        gs.fabric_packages("debian", branch, "fabric_manager")


def test_nvlsm_refused_on_old_branch_and_imex_on_ancient():
    with pytest.raises(ModuleError, match="NVLSM"):
        gs.fabric_packages("debian", "570", "fabric_manager_nvlsm")
    with pytest.raises(ModuleError, match="IMEX"):
        gs.fabric_packages("debian", "535", "imex")
    with pytest.raises(ModuleError):
        gs.fabric_packages("suse", "580", "fabric_manager")


@pytest.mark.parametrize("option,facts,expected", [
    ("auto", "none", "none"), ("auto", "fabric_manager", "fabric_manager"), ("auto", "imex", "imex"),
    (True, "none", "fabric_manager"), (True, "fabric_manager_nvlsm", "fabric_manager_nvlsm"),
    (False, "fabric_manager", "none"),
])
def test_fabric_wanted(option, facts, expected):
    assert gs.fabric_wanted(option, facts) == expected


@pytest.mark.parametrize("option,facts", [("maybe", "none"), ("auto", "fabric manager"), ("auto", None), (1.5, "none")])
def test_fabric_wanted_hostile(option, facts):
    with pytest.raises(ModuleError):
        gs.fabric_wanted(option, facts)


def test_exact_version():
    assert gs.exact_version("debian", "580.95.05") == "580.95.05-1"
    assert gs.exact_version("redhat", "550.54.15") == "550.54.15"
    for bad in ("580", "580.*", "580.95.05-1", "latest", None, "580.95.05 || true"):
        with pytest.raises(ModuleError):
            gs.exact_version("debian", bad)


@pytest.mark.parametrize("branch,reported,expected", [
    ("570", None, ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda12"]),
    ("525", None, ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda12"]),
    ("580", None, ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda13"]),
    ("590", "13.1", ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda13"]),
    ("580", "12.9", ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda12"]),
])
def test_dcgm_packages(branch, reported, expected):
    assert gs.dcgm_packages(branch, reported) == expected


def test_dcgm_refused():
    with pytest.raises(ModuleError, match="DCGM 4"):
        gs.dcgm_packages("470")
    with pytest.raises(ModuleError):
        gs.dcgm_packages("580", "thirteen")


def test_diag_pass_per_gpu():
    result = gs.parse_diag(fixture("diag-r1-pass-8gpu.txt"), range(8))
    assert result["ok"] is True
    assert result["gpus"] == {i: "pass" for i in range(8)}
    assert "DCGM Version" not in result["tests"]


def test_diag_fail_one_gpu():
    result = gs.parse_diag(fixture("diag-r1-fail-gpu3.txt"), range(4))
    assert result["ok"] is False
    assert result["gpus"][3] == "fail"
    assert result["gpus"][0] == "pass"
    assert result["tests"]["Page Retirement/Row Remap"][3] == "fail"


def test_diag_all_rows_and_missing_gpu():
    result = gs.parse_diag(fixture("diag-r1-all.txt"), range(2))
    assert result["ok"] is True and result["gpus"] == {0: "pass", 1: "pass"}
    result = gs.parse_diag(fixture("diag-r1-pass-8gpu.txt"), range(9))
    assert result["ok"] is False and "GPU 8" in result["error"]


@pytest.mark.parametrize("text", ["", "garbage\n", "| | |\n"])
def test_diag_unparsable_is_failed(text):
    assert gs.parse_diag(text, [0])["ok"] is False


def test_diag_error_is_failed():
    result = gs.parse_diag(fixture("diag-error.txt"), [0])
    assert result["ok"] is False and result["error"]


def test_diag_bare_rows_apply_to_every_gpu_dcgm3_shape():
    """DCGM 3 prints a bare Pass/Fail on rows without GPU lines (hand-written in that layout)."""
    text = ("| Diagnostic | Result |\n|-----  Deployment  --------+----|\n| Denylist | Pass |\n"
            "| Persistence Mode | Fail |\n")
    result = gs.parse_diag(text, range(2))
    assert result["ok"] is False and result["gpus"] == {0: "fail", 1: "fail"}
    assert gs.parse_diag(text.replace("Fail", "Pass"), range(2))["ok"] is True
