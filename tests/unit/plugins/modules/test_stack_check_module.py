# SPDX-License-Identifier: GPL-3.0-or-later
"""The stack_check module itself: argument checks, never changed, fail_on_error."""

from __future__ import annotations

import json
import os
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.modules import stack_check


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            stack_check.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path):
    """A stand-in venv whose bin/python is this test's own interpreter (the probe runs for real)."""
    (tmp_path / "env" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, tmp_path / "env" / "bin" / "python")
    return str(tmp_path / "env")


def test_python_check_without_an_env_is_refused(capsys):
    code, result = run_module(capsys, {"checks": ["python"]})
    assert code == 1 and "python_env is not set" in result["msg"]


def test_a_framework_that_is_not_a_module_name_is_refused(capsys, env):
    code, result = run_module(capsys, {"checks": ["python"], "python_env": env, "framework": "torch; rm -rf /"})
    assert code == 1 and "is not auto, torch, jax, none or a module name" in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_real_env_probe_is_never_a_change(capsys, env, check_mode):
    code, result = run_module(capsys, {"checks": ["python"], "python_env": env, "framework": "json",
                                       "_ansible_check_mode": check_mode})
    assert code == 0 and result["changed"] is False
    assert [c["status"] for c in result["checks"]] == ["ok"]
    assert result["checks"][0]["framework"] == "json"


def test_a_failed_check_fails_the_module_unless_told_not_to(capsys, env):
    args = {"checks": ["python"], "python_env": env, "framework": "mlhost_no_such_module"}
    code, result = run_module(capsys, args)
    assert code == 1 and result["failed_checks"] == ["python"]
    assert result["msg"].startswith("Stack check failed - python:") and "ModuleNotFoundError" in result["msg"]
    code, result = run_module(capsys, dict(args, fail_on_error=False))
    assert code == 0 and result["failed_checks"] == ["python"] and result["changed"] is False
