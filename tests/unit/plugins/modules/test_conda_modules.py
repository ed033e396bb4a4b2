# SPDX-License-Identifier: GPL-3.0-or-later
"""The miniforge and conda_env modules themselves: arguments, exit_json shape, no_log, errors."""

from __future__ import annotations

import json
import shutil

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.modules import conda_env, miniforge
from mlhost_testlib import FIXTURES


def run_module(module, capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_conda_env_met_request_reports_packages_and_runs_nothing(tmp_path, capsys):
    prefix = tmp_path / "envs" / "greet"
    shutil.copytree(FIXTURES / "conda" / "env-greet11", prefix)
    code, result = run_module(conda_env, capsys, {
        "prefix": str(prefix), "specs": ["mlhost-greet >=1.1,<2"], "channels": ["file:///srv/c"], "engine": "rattler",
        "tool_dir": str(tmp_path / "tools"), "_ansible_diff": True})
    assert code == 0 and result["changed"] is False
    assert result["commands"] == [] and result["env_prefix"] == str(prefix)
    assert result["packages"] == {"mlhost-data": "2.0.0", "mlhost-greet": "1.1.0"}
    assert result["diff"]["before"] == result["diff"]["after"] == "mlhost-data==2.0.0\nmlhost-greet==1.1.0\n"


def test_conda_env_refuses_name_and_prefix_together(tmp_path, capsys):
    code, result = run_module(conda_env, capsys, {"name": "a", "prefix": str(tmp_path / "a"), "specs": ["x"]})
    assert code == 1 and "mutually exclusive" in result["msg"]


def test_conda_env_bad_spec_fails_with_the_spec(tmp_path, capsys):
    code, result = run_module(conda_env, capsys, {"prefix": str(tmp_path / "e"), "specs": ["numpy >=<1"], "engine": "rattler"})
    assert code == 1 and "'numpy >=<1' is not valid" in result["msg"]


def test_miniforge_hides_proxy_credentials(tmp_path, capsys):
    code, result = run_module(miniforge, capsys, {
        "prefix": str(tmp_path / "mf"), "installer": "http://example.invalid/Miniforge3.sh",
        "proxy_servers": {"https": "http://user:s3cret@proxy:3128"}})
    assert code == 1 and "sha256 is not set" in result["msg"]
    assert "s3cret" not in json.dumps(result)
