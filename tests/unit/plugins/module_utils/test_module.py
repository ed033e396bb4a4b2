# SPDX-License-Identifier: GPL-3.0-or-later
"""The one module entry (_module), the one error type and masking (_errors), ownership (_ownership), the atomic writer (_files)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files, _module, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask, mask_text


class Exited(Exception):
    pass


class FakeModule:
    """Stands in for AnsibleModule: params, check/diff mode, and exit/fail recorded."""

    def __init__(self, params=None, check_mode=False, diff=False):
        self.params = {"proxy_env": {}, **(params or {})}
        self.check_mode = check_mode
        self._diff = diff
        self._name = "demo"
        self.warnings: list[str] = []
        self.exited: dict | None = None
        self.failed: dict | None = None

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **kwargs):
        self.exited = kwargs
        raise Exited

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Exited

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return None


class Demo(_module.Worker):
    applied: list = []

    def plan(self):
        if self.params.get("bad"):
            raise ModuleError("bad is set: unset it. URL https://user:tok@host/simple", rc=3)
        if self.params.get("boom"):
            raise KeyError("boom https://u:s3cr3t@h/")
        todo = self.params.get("todo", [])
        return _module.Plan(changed=bool(todo), result={"todo": todo, "index": "https://u:secret@h/simple"},
                            diff={"before": "", "after": "\n".join(todo)}, steps=todo, warnings=["see https://u:pw@h/x"])

    def apply(self, plan):
        Demo.applied.extend(plan.steps)
        return {"done": plan.steps}


def run(**kwargs):
    module = FakeModule(**kwargs)
    Demo.applied = []
    with pytest.raises(Exited):
        _module.execute(module, Demo)
    return module


def test_apply_runs_the_plan_and_changed_comes_from_it():
    module = run(params={"todo": ["a", "b"]})
    assert Demo.applied == ["a", "b"] and module.exited["changed"] is True and module.exited["done"] == ["a", "b"]
    assert "diff" not in module.exited


def test_check_mode_is_the_plan_and_applies_nothing():
    module = run(params={"todo": ["a"]}, check_mode=True, diff=True)
    assert Demo.applied == [] and module.exited["changed"] is True and "done" not in module.exited
    assert module.exited["diff"] == {"before": "", "after": "a"}


def test_nothing_to_do_applies_nothing():
    module = run(params={"todo": []})
    assert Demo.applied == [] and module.exited["changed"] is False


def test_module_error_becomes_fail_json_with_details_and_masked_message():
    module = run(params={"bad": True})
    assert module.failed["msg"] == "bad is set: unset it. URL https://***@host/simple"
    assert module.failed["rc"] == 3 and module.failed["commands"] == []


def test_unexpected_exception_is_an_internal_error_naming_the_module_masked():
    module = run(params={"boom": True})
    assert module.failed["msg"].startswith("Internal error in mlinfra.mlhost.demo: KeyError")
    assert "s3cr3t" not in json.dumps(module.failed)


def test_results_and_warnings_are_masked():
    module = run(params={"todo": ["x"]})
    assert module.exited["index"] == "https://***@h/simple"
    assert module.warnings == ["see https://***@h/x"]


@pytest.mark.parametrize("text, shown", [
    ("--index-url https://user:tok@pypi.example.com/simple", "--index-url https://***@pypi.example.com/simple"),
    ("--extra-index-url=https://__token__:pypi-AgEI@upload/simple/", "--extra-index-url=https://***@upload/simple/"),
    ("https://host/Miniforge3.sh?X-Amz-Signature=abc&X-Amz-Credential=k", "https://host/Miniforge3.sh?***"),
    ("git+https://ghp_abc@github.com/org/repo.git@v1.2#egg=repo", "git+https://***@github.com/org/repo.git@v1.2#egg=repo"),
    ("HF_TOKEN=hf_abc and PIP_PASSWORD=x", "HF_TOKEN=*** and PIP_PASSWORD=***"),
    ("git+https://github.com/org/repo.git@v1.2", "git+https://github.com/org/repo.git@v1.2"),
    ("http://proxy.example.com:3128", "http://proxy.example.com:3128"),
    ("numpy==1.26.4", "numpy==1.26.4"),
])
def test_mask_text(text, shown):
    assert mask_text(text) == shown


def test_mask_walks_containers():
    assert mask({"a": ["https://u:p@h/"], "https://u:p@k/": ("x",)}) == {"a": ["https://***@h/"], "https://***@k/": ("x",)}


@pytest.mark.parametrize("path, words", [
    ("/", "root directory"), ("/var/log", "system directory"), ("/var/spool", "system directory"), ("/etc", "inside /etc"),
    ("/usr/local", "inside /usr"), ("/home/alice", "directly under /home"), ("/home", "system directory"),
    ("/opt", "system directory"), ("/var/lib/docker", "inside /var/lib"), ("/root", "system directory"),
    ("/opt/mlhost/tools", "tool directory"), ("/opt/mlhost", "tool directory"), ("/opt/mlhost/tools/venv/x", "tool directory"),
])
def test_protected_paths(path, words):
    with pytest.raises(ModuleError) as err:
        _ownership.check_target(path, "path", "/opt/envs/torch", tool_dir="/opt/mlhost/tools")
    assert words in err.value.msg and "Nothing was changed" in err.value.msg


@pytest.mark.parametrize("path", ["/opt/envs/torch", "/opt/miniforge3", "/home/alice/envs/x", "/srv/envs/a", "/tmp/build/env"])
def test_application_paths_are_allowed(path):
    assert _ownership.check_target(path, "path", "/opt/envs/torch", tool_dir="/opt/mlhost/tools") == path


@pytest.mark.parametrize("value, words", [
    ("", "is empty"), ("venvs/x", "absolute path"), ("/opt/x\0y", "NUL byte"), ("/opt/x\n", "line break"), (None, "is empty"),
])
def test_malformed_paths(value, words):
    with pytest.raises(ModuleError) as err:
        _ownership.check_target(value, "prefix", "/opt/miniforge3")
    assert words in err.value.msg


def test_symlink_into_a_system_tree_and_paths_inside_envs(tmp_path):
    os.symlink("/usr", tmp_path / "usr-link")
    with pytest.raises(ModuleError, match="a link to /usr"):
        _ownership.check_target(str(tmp_path / "usr-link"), "path", "/opt/envs/x")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with pytest.raises(ModuleError, match="inside the Python environment"):
        _ownership.check_target(str(tmp_path / "venv" / "sub"), "path", "/opt/envs/x")
    (tmp_path / "conda" / "conda-meta").mkdir(parents=True)
    (tmp_path / "conda" / "envs").mkdir()
    with pytest.raises(ModuleError, match="envs directory of the conda installation"):
        _ownership.check_target(str(tmp_path / "conda" / "envs"), "prefix", "/opt/envs/x")
    assert _ownership.check_target(str(tmp_path / "conda" / "envs" / "a"), "prefix", "/opt/envs/x")
    (tmp_path / "conda" / "envs" / "a" / "conda-meta").mkdir(parents=True)
    with pytest.raises(ModuleError, match="inside the conda environment"):
        _ownership.check_target(str(tmp_path / "conda" / "envs" / "a" / "b"), "prefix", "/opt/envs/x")
    with pytest.raises(ModuleError, match="inside the conda environment"):
        _ownership.check_target(str(tmp_path / "conda" / "pkgs"), "prefix", "/opt/envs/x")


def test_markers(tmp_path):
    target = tmp_path / "env"
    target.mkdir()
    with pytest.raises(ModuleError, match="did not create") as err:
        _ownership.refuse_unowned_dir(str(target), "path", "remove")
    assert "adopt it by creating the file" in err.value.msg
    _ownership.write_marker(str(target), "mlinfra.mlhost.python_env")
    _ownership.refuse_unowned_dir(str(target), "path", "remove")
    _ownership.refuse_unowned_dir(str(tmp_path / "absent"), "path", "remove")
    link = tmp_path / "link"
    os.symlink(target, link)
    assert _ownership.is_owned_dir(str(link))
    assert json.loads((target / _ownership.MARKER).read_text())["created_by"] == "mlinfra.mlhost.python_env"


def test_text_marker(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(ModuleError, match="was not written by the collection"):
        _ownership.refuse_unowned_text(str(passwd), "lock_file")
    lock = tmp_path / "lock.txt"
    lock.write_text(_ownership.TEXT_MARKER + " python_env\nsix==1.17.0\n")
    _ownership.refuse_unowned_text(str(lock), "lock_file")
    _ownership.refuse_unowned_text(str(tmp_path / "new.txt"), "lock_file")
    os.symlink(lock, tmp_path / "lock-link")
    assert not _ownership.text_is_owned(str(tmp_path / "lock-link"))


def test_atomic_writer(tmp_path):
    path = tmp_path / "d" / "f.txt"
    assert _files.write_if_changed(str(path), "a\n", 0o640) is True
    assert path.read_text() == "a\n" and oct(path.stat().st_mode & 0o777) == "0o640"
    assert _files.write_if_changed(str(path), "a\n") is False
    assert _files.differs(str(path), b"b") and not _files.differs(str(path), b"a\n")
    assert sorted(os.listdir(path.parent)) == ["f.txt"]
