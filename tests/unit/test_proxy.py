# SPDX-License-Identifier: GPL-3.0-or-later
"""The proxy reaches the modules as their no_log option ``proxy_env``, never as a task's ``environment``.

ansible-core prints a task's environment in its command line at -vvv (password included: the faults
scenario counted it); a module option travels inside the module payload and is censored when no_log.
"""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS, Runner

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOWNLOADERS = ["build_tools", "conda_env", "container_toolkit", "cuda_toolkit", "miniforge", "nvidia_driver", "python_env"]


class Failed(Exception):
    pass


class Module:
    def __init__(self, proxy_env: dict[str, object] | None) -> None:
        self.params = {"proxy_env": proxy_env}
        self.failed: dict[str, object] | None = None

    def fail_json(self, **kwargs: object) -> None:
        self.failed = kwargs
        raise Failed(kwargs["msg"])


@pytest.fixture()
def clean_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    old_umask = os.umask(0o022)
    yield
    os.umask(old_umask)


def test_proxy_option_is_no_log_dict():
    assert PROXY_OPTIONS == {"proxy_env": {"type": "dict", "default": {}, "no_log": True}}


def test_runner_puts_proxy_env_into_the_module_environment(clean_env, monkeypatch):
    monkeypatch.setenv("KEEP", "1")
    Runner(Module({"http_proxy": "http://u:PW@proxy:3128", "https_proxy": "http://u:PW@proxy:3128", "no_proxy": None}))
    assert os.environ["http_proxy"] == "http://u:PW@proxy:3128"
    assert os.environ["https_proxy"] == "http://u:PW@proxy:3128"
    assert os.environ["no_proxy"] == ""
    assert os.environ["KEEP"] == "1"


def test_runner_without_proxy_env_changes_nothing(clean_env):
    before = dict(os.environ)
    Runner(Module({}))
    Runner(Module(None))
    Runner(object())
    assert dict(os.environ) == before


def test_bad_variable_name_fails_before_anything(clean_env):
    module = Module({"http_proxy": "http://p:3128", "https proxy": "x", "1x": "y"})
    with pytest.raises(ModuleError) as err:
        Runner(module)
    assert "'1x', 'https proxy' is not an environment variable name" in str(err.value)
    assert "http_proxy" not in os.environ


@pytest.mark.parametrize("value", ["not a url", "http://:3128", "ftp://proxy:21", "http://proxy:3128\n", "http://pro xy:1"])
def test_proxy_value_that_is_no_url_is_refused_without_printing_it(clean_env, value):
    with pytest.raises(ModuleError) as err:
        Runner(Module({"https_proxy": value}))
    assert "https_proxy" in err.value.msg and value.strip() not in err.value.msg
    assert "https_proxy" not in os.environ


@pytest.mark.parametrize("value", ["http://proxy.example.com:3128", "proxy:3128", "socks5h://u:p@[::1]:1080", "https://p/"])
def test_proxy_urls_people_use_are_taken(clean_env, value):
    Runner(Module({"https_proxy": value, "no_proxy": "localhost,127.0.0.1,.internal"}))
    assert os.environ["https_proxy"] == value


@pytest.mark.parametrize("module", DOWNLOADERS)
def test_downloading_modules_take_proxy_env_and_document_it(module):
    source = (ROOT / "plugins" / "modules" / f"{module}.py").read_text()
    assert "mlinfra.mlhost.proxy" in source
    if module in ("nvidia_driver", "cuda_toolkit", "container_toolkit"):
        assert "**PACKAGE_OPTIONS" in source
        shared = (ROOT / "plugins" / "module_utils" / "_nvidia_repo.py").read_text()
        assert "**PROXY_OPTIONS" in shared
    else:
        assert "**PROXY_OPTIONS" in source


def test_action_group_lists_the_downloading_modules():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["proxied"]) == DOWNLOADERS


def test_ml_host_passes_the_proxy_as_module_defaults_never_as_environment():
    found = 0
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        text = path.read_text()
        assert "environment: \"{{ mlhost_proxy_env" not in text, f"{path}: the proxy in `environment:` is printed at -vvv"
        found += text.count('proxy_env: "{{ mlhost_proxy_env }}"')
    assert found == 2  # the provisioning block (main.yml) and the validate block (validate.yml)
