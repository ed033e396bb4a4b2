# SPDX-License-Identifier: GPL-3.0-or-later
"""A mapping or a list where miniforge and conda_env take a string (a YAML slip) is refused naming the option."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _module, _run
from ansible_collections.mlinfra.mlhost.plugins.modules import conda_env, miniforge


@pytest.fixture(autouse=True)
def closed(monkeypatch):
    def door(*args, **kwargs):
        raise AssertionError(f"a command or download ran: {args}")

    monkeypatch.setattr(_run.Runner, "run", door)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", door)
    monkeypatch.setattr(_module.Host, "fetch", door)


@pytest.mark.parametrize("module, args, option", [
    (miniforge, {"prefix": "/opt/mf-x", "installer": {"url": "https://x.example/i.sh"}, "sha256": "a" * 64}, "installer"),
    (miniforge, {"prefix": {"path": "/opt/mf-x"}}, "prefix"),
    (miniforge, {"prefix": "/opt/mf-x", "installer": "/srv/i.sh", "version": ["24.11.3"]}, "version"),
    (miniforge, {"prefix": "/opt/mf-x", "installer": "/srv/i.sh", "channels": {"conda-forge": 1}}, "channels"),
    (conda_env, {"prefix": {"path": "/opt/envs/x"}, "specs": ["python"]}, "prefix"),
    (conda_env, {"prefix": "/opt/envs/x", "specs": {"python": "3.11"}}, "specs"),
    (conda_env, {"prefix": "/opt/envs/x", "specs": [{"python": "3.11"}]}, "specs"),
    (conda_env, {"name": {"n": "train"}, "specs": ["python"]}, "name"),
    (conda_env, {"prefix": "/opt/envs/x", "specs": ["python"], "lock_file": ["/opt/envs/x.lock"]}, "lock_file"),
])
def test_a_mapping_or_list_for_a_string_is_refused_naming_the_option(module, args, option, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1 and option in result["msg"], result
    assert "Internal error" not in result["msg"] and "has no attribute" not in result["msg"], result["msg"]
