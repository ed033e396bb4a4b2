# SPDX-License-Identifier: GPL-3.0-or-later
"""conda_env's decisions on captured conda-meta trees, and the mamba/conda command lines.

The conda-meta records under fixtures/conda/ are CAPTURED: written by
py-rattler 0.28.0 installing packages of the test channel that
molecule/conda/files/build_channel.py builds. The mamba/conda CLI is a
STAND-IN here (FakeRunner with --json answers in conda's format): no conda
binary can be had on the test bed.
"""

from __future__ import annotations

import json
import shutil

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda, _conda_env, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._conda_spec import MatchSpec
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FIXTURES, FakeRunner, make_host, run_worker


def params(tmp_path, **overrides):
    base = {"name": None, "prefix": str(tmp_path / "envs" / "greet"), "file": None, "specs": ["mlhost-greet=1.0", "mlhost-extra"],
            "channels": ["file:///srv/conda-channel"], "conda": str(tmp_path / "base"), "prune": False, "engine": "rattler",
            "lock_file": None, "tool_dir": str(tmp_path / "tools"), "index_url": None, "find_links": [], "ca_bundle": None,
            "timeout": 60, "state": "present"}
    base.update(overrides)
    return base


@pytest.fixture
def greet10(tmp_path):
    """An env made by py-rattler through the collection: greet 1.0.0, data 1.0.0, extra 0.1.0 (captured records), marked."""
    prefix = tmp_path / "envs" / "greet"
    shutil.copytree(FIXTURES / "conda" / "env-greet10", prefix)
    _ownership.write_marker(str(prefix), "mlinfra.mlhost.conda_env")
    return prefix


def run(p, runner=None, check_mode=False):
    return run_worker(_conda_env.CondaEnv, make_host(p, runner if runner is not None else FakeRunner({}), check_mode=check_mode))


def records(name):
    found, bad = _conda.read_records(Sysroot(str(FIXTURES / "conda" / name)), "/")
    assert bad == []
    return found


def test_read_records_from_captured_conda_meta():
    found = records("env-greet10")
    assert sorted(found) == ["mlhost-data", "mlhost-extra", "mlhost-greet"]
    greet = found["mlhost-greet"]
    assert (greet["version"], greet["build"], greet["depends"]) == ("1.0.0", "0", ["mlhost-data >=1"])
    assert greet["url"].endswith("/noarch/mlhost-greet-1.0.0-0.conda")
    assert greet["requested_specs"] == ["mlhost-greet 1.0.*"]


def test_unreadable_record_is_reported_not_guessed(tree):
    root = tree({"env/conda-meta/good-1-0.json": json.dumps({"name": "good", "version": "1"}),
                 "env/conda-meta/bad-1-0.json": "{not json", "env/conda-meta/history": ""})
    found, bad = _conda.read_records(Sysroot(str(root)), "/env")
    assert list(found) == ["good"] and bad == ["bad-1-0.json"]


@pytest.mark.parametrize("specs,prune,unmet,extra", [
    (["mlhost-greet=1.0", "mlhost-extra"], False, [], []),
    (["mlhost-greet=1.0", "mlhost-extra"], True, [], []),
    (["mlhost-greet"], True, [], ["mlhost-extra"]),          # data stays: greet depends on it
    (["mlhost-greet"], False, [], []),
    (["mlhost-greet >=1.1"], False, ["mlhost-greet >=1.1"], []),
    (["mlhost-greet 1.0.0 0"], False, [], []),
    (["mlhost-greet 1.0.0 1"], False, ["mlhost-greet 1.0.0 1"], []),
    (["mlhost-data <2"], True, [], ["mlhost-extra", "mlhost-greet"]),
    (["mlhost-data >=2"], False, ["mlhost-data >=2"], []),
    (["python"], False, ["python"], []),
])
def test_compare_on_captured_records(specs, prune, unmet, extra):
    assert _conda_env.compare(records("env-greet10"), [MatchSpec(s) for s in specs], prune) == (unmet, extra)


def test_diff_between_two_captured_envs():
    assert _conda_env.diff_records(records("env-greet10"), records("env-greet11")) == {
        "added": {}, "removed": {"mlhost-extra": "0.1.0"},
        "updated": {"mlhost-data": {"from": "1.0.0-0", "to": "2.0.0-0"}, "mlhost-greet": {"from": "1.0.0-0", "to": "1.1.0-0"}}}


def test_explicit_lock():
    text = _conda_env.explicit_lock(records("env-greet11"), "/opt/envs/greet")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["@EXPLICIT",
                     "file:///tmp/chan/noarch/mlhost-data-2.0.0-0.conda#150b9f0cc83387e18ef03960ee972ec0",
                     "file:///tmp/chan/noarch/mlhost-greet-1.1.0-0.conda#" + records("env-greet11")["mlhost-greet"]["md5"]]


# --- validation --------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,expect", [
    ({"prefix": None, "name": "../x"}, "not a plain name"),
    ({"prefix": None, "name": "a/b"}, "not a plain name"),
    ({"prefix": None, "name": "base"}, "not a plain name"),
    ({"prefix": "/usr/lib/env"}, "inside /usr"),
    ({"prefix": "/opt"}, "system directory"),
    ({"prefix": "relative/env"}, "absolute path"),
    ({"specs": []}, "Nothing to install"),
    ({"specs": ["numpy >=<1"]}, "is not valid"),
    ({"specs": ["numpy", "numpy >=1"]}, "requested more than once"),
    ({"channels": ["defaults"]}, "terms of service"),
    ({"channels": ["https://repo.anaconda.com/pkgs/main"]}, "terms of service"),
    ({"channels": ["ftp://mirror/conda"]}, "is not an http"),
    ({"file": "/nonexistent/environment.yml", "specs": []}, "does not exist on the host"),
    ({"file": "env.yml"}, "absolute path"),
    ({"lock_file": "lock.txt"}, "absolute path"),
])
def test_bad_input_is_refused(tmp_path, overrides, expect):
    with pytest.raises(ModuleError, match=expect):
        _conda_env.validate(params(tmp_path, **overrides))


def test_a_name_in_a_base_that_does_not_exist_is_refused_before_any_change(tmp_path):
    """The base may be one an earlier task installs (check mode plans it); the real run refuses before touching anything."""
    p = params(tmp_path, prefix=None, name="greet")
    assert run(p, check_mode=True)["changed"] is True
    with pytest.raises(ModuleError, match="does not exist"):
        run(p)
    assert not (tmp_path / "base").exists()


def test_prefix_from_name_and_from_file(tmp_path):
    (tmp_path / "base").mkdir()
    prefix = _conda_env.validate(params(tmp_path, prefix=None, name="greet"))[0]
    assert prefix == str(tmp_path / "base" / "envs" / "greet")
    env_file = tmp_path / "environment.yml"
    env_file.write_text("name: fromfile\nchannels: [conda-forge]\ndependencies: [python=3.11]\n")
    prefix, req = _conda_env.validate(params(tmp_path, prefix=None, file=str(env_file), specs=[], channels=["file:///x"]))
    assert prefix == str(tmp_path / "base" / "envs" / "fromfile")
    assert req["channels"] == ["file:///x"]  # the channels option replaces the file's
    assert req["channels_replaced"] == {"file": ["conda-forge"], "by": ["file:///x"]}
    assert [s.text for s in req["specs"]] == ["python=3.11"]


def test_nodefaults_is_conda_s_marker_not_a_channel(tmp_path):
    # Real environment.yml files list it (channels: [pytorch, nvidia, conda-forge, nodefaults]); it was fetched as a
    # channel named nodefaults.
    (tmp_path / "base").mkdir()
    env_file = tmp_path / "environment.yml"
    env_file.write_text("name: train\nchannels:\n  - conda-forge\n  - nodefaults\ndependencies:\n  - python=3.11\n")
    _prefix, req = _conda_env.validate(params(tmp_path, prefix=None, file=str(env_file), specs=[], channels=[]))
    assert req["channels"] == ["conda-forge"] and req["channels_replaced"] is None


# --- runs -------------------------------------------------------------------------------------

def test_met_request_runs_nothing(tmp_path, greet10):
    p = params(tmp_path)
    runner = FakeRunner({})
    result = run(p, runner)
    assert result["changed"] is False
    assert runner.calls == []
    assert result["packages"] == {"mlhost-data": "1.0.0", "mlhost-extra": "0.1.0", "mlhost-greet": "1.0.0"}


def test_check_mode_without_rattler_reports_the_unmet_specs_and_runs_nothing(tmp_path, greet10):
    p = params(tmp_path, specs=["mlhost-greet=1.1"], prune=True)
    runner = FakeRunner({})
    result = run(p, runner, check_mode=True)
    assert result["changed"] is True and runner.calls == []
    assert result["added"] == {"mlhost-greet=1.1": "(unsolved)"}
    assert result["removed"] == {"mlhost-extra": "0.1.0"}
    assert any("cannot solve" in w for w in result["warnings"])
    assert result["diff"]["before"] == "mlhost-data==1.0.0\nmlhost-extra==0.1.0\nmlhost-greet==1.0.0\n"
    assert result["diff"]["after"] == "mlhost-data==1.0.0\nmlhost-greet==1.0.0\nmlhost-greet=1.1==(unsolved)\n"
    assert sorted(p.name for p in (greet10 / "conda-meta").iterdir())[0] == "history"  # untouched


def test_state_absent_removes_only_conda_envs(tmp_path, greet10):
    p = params(tmp_path, state="absent")
    result = run(p)
    assert result["changed"] and not greet10.exists()
    assert result["removed"] == {"mlhost-data": "1.0.0", "mlhost-extra": "0.1.0", "mlhost-greet": "1.0.0"}
    (tmp_path / "envs" / "plain").mkdir(parents=True)
    p = params(tmp_path, state="absent", prefix=str(tmp_path / "envs" / "plain"))
    with pytest.raises(ModuleError, match="not a conda environment"):
        run(p)


# --- the mamba/conda CLI (STAND-IN answers in conda's --json format) ---------------------------

def base_with(tmp_path, program):
    exe = tmp_path / "base" / "bin" / program
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 99\n")
    exe.chmod(0o755)
    return str(exe)


def test_conda_command_lines():
    assert _conda_env.conda_command("/b/bin/mamba", "create", "/e", ["conda-forge"], ["python=3.11"]) == [
        "/b/bin/mamba", "create", "--yes", "--json", "--quiet", "--prefix", "/e", "--override-channels",
        "--channel", "conda-forge", "--strict-channel-priority", "python=3.11"]
    assert _conda_env.conda_command("/b/bin/conda", "install", "/e", [], ["x"], dry_run=True) == [
        "/b/bin/conda", "install", "--yes", "--json", "--quiet", "--prefix", "/e", "--strict-channel-priority", "--dry-run", "x"]
    assert _conda_env.conda_command("/b/bin/conda", "remove", "/e", ["ignored"], ["x"]) == [
        "/b/bin/conda", "remove", "--yes", "--json", "--quiet", "--prefix", "/e", "x"]


def test_engine_auto_prefers_mamba_then_conda_then_rattler(tmp_path):
    env = _conda_env.CondaEnv(make_host(params(tmp_path, engine="auto")))
    assert env.engine() == ("rattler", None)
    conda = base_with(tmp_path, "conda")
    assert env.engine() == ("conda", conda)
    mamba = base_with(tmp_path, "mamba")
    assert env.engine() == ("mamba", mamba)
    with pytest.raises(ModuleError, match="use engine: rattler"):
        _conda_env.CondaEnv(make_host(params(tmp_path, engine="mamba", conda=str(tmp_path / "nobase")))).engine()


def test_stand_in_mamba_update_is_one_install_then_verified(tmp_path, greet10):
    mamba = base_with(tmp_path, "mamba")
    p = params(tmp_path, engine="auto", specs=["mlhost-greet=1.1"])
    prefix, req = _conda_env.validate(p)
    argv = _conda_env.conda_command(mamba, "install", prefix, ["file:///srv/conda-channel"], ["mlhost-greet=1.1", "mlhost-extra"])
    dry = _conda_env.conda_command(mamba, "install", prefix, ["file:///srv/conda-channel"], ["mlhost-greet=1.1", "mlhost-extra"], dry_run=True)

    class Applying(FakeRunner):
        def run(self, argv, **kwargs):
            out = super().run(argv, **kwargs)
            if "--dry-run" not in argv:
                # what the real mamba would have left: the records of a 1.1 env
                shutil.rmtree(greet10 / "conda-meta")
                shutil.copytree(FIXTURES / "conda" / "env-greet11" / "conda-meta", greet10 / "conda-meta")
            return out

    answer = {"success": True, "actions": {"LINK": [{"name": "mlhost-greet", "version": "1.1.0", "build_string": "0"}],
                                           "UNLINK": [{"name": "mlhost-greet", "version": "1.0.0", "build_string": "0"}]}}
    runner = Applying({tuple(argv): (0, json.dumps(answer), ""), tuple(dry): (0, json.dumps(answer), "")})
    result = run(p, runner)
    assert runner.calls == [dry, argv]  # the plan (a dry run), then the one install
    assert result["engine"] == "mamba" and result["changed"]
    # reported from what conda-meta holds afterwards, not from the CLI's claims
    assert result["updated"] == {"mlhost-data": {"from": "1.0.0-0", "to": "2.0.0-0"}, "mlhost-greet": {"from": "1.0.0-0", "to": "1.1.0-0"}}
    assert result["removed"] == {"mlhost-extra": "0.1.0"}


@pytest.mark.parametrize("plan_fails", [True, False], ids=["in-the-plan", "in-the-install"])
def test_stand_in_conda_unsatisfiable_fails_and_names_it(tmp_path, greet10, plan_fails):
    conda = base_with(tmp_path, "conda")
    p = params(tmp_path, engine="conda", specs=["mlhost-greet >=5"], channels=[])
    prefix, req = _conda_env.validate(p)
    argv = _conda_env.conda_command(conda, "install", prefix, [], ["mlhost-greet >=5", "mlhost-extra"])
    dry = _conda_env.conda_command(conda, "install", prefix, [], ["mlhost-greet >=5", "mlhost-extra"], dry_run=True)
    error = {"success": False, "exception_name": "PackagesNotFoundError", "error": "PackagesNotFoundError: ...",
             "message": "The following packages are not available from current channels:\n\n  - mlhost-greet[version='>=5']"}
    runner = FakeRunner({tuple(argv): (1, json.dumps(error), ""),
                         tuple(dry): (1, json.dumps(error), "") if plan_fails else (0, json.dumps({"success": True, "actions": {}}), "")})
    with pytest.raises(ModuleError, match=r"(?s)not available.*PackagesNotFoundError.*left as it was") as info:
        run(p, runner)
    assert info.value.details["engine_error"] == "PackagesNotFoundError"
    assert runner.calls == ([dry] if plan_fails else [dry, argv])


def test_stand_in_conda_check_mode_is_a_dry_run_plan(tmp_path, greet10):
    conda = base_with(tmp_path, "conda")
    p = params(tmp_path, engine="conda", specs=["mlhost-greet=1.1"], prune=True)
    prefix, req = _conda_env.validate(p)
    argv = _conda_env.conda_command(conda, "install", prefix, ["file:///srv/conda-channel"], ["mlhost-greet=1.1"], dry_run=True)
    answer = {"success": True, "dry_run": True, "actions": {
        "LINK": [{"name": "mlhost-greet", "version": "1.1.0", "build_string": "0"}],
        "UNLINK": [{"name": "mlhost-greet", "version": "1.0.0", "build_string": "0"}]}}
    result = run(p, FakeRunner({tuple(argv): (0, json.dumps(answer), "")}), check_mode=True)
    assert result["changed"] is True
    assert result["updated"] == {"mlhost-greet": {"from": "1.0.0-0", "to": "1.1.0-0"}}
    assert result["removed"] == {"mlhost-extra": "0.1.0"}
    assert (greet10 / "conda-meta" / "mlhost-greet-1.0.0-0.json").exists()


# --- rattler (its helper's answer is a stand-in here; molecule/conda runs it for real) -----------

def test_rattler_failure_leaves_the_env_and_no_new_directory(tmp_path, greet10, monkeypatch):
    p = params(tmp_path, specs=["mlhost-greet >=5"])
    prefix, req = _conda_env.validate(p)
    env = _conda_env.CondaEnv(make_host(p))
    monkeypatch.setattr(env, "ensure_tools", lambda need_rattler: True)
    monkeypatch.setattr(env, "tools_ready", lambda need_rattler: False)  # the plan cannot solve: the install's own solve fails

    class Door:
        calls = []

        def run(self, argv, check=True, data=None, timeout=None, env=None, cwd=None):
            self.calls.append(json.loads(data))
            from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult
            return CommandResult(2, json.dumps({"error": "SolverError", "message": "No candidates were found for mlhost-greet >=5."}), "")

    env.runner = Door()
    with pytest.raises(ModuleError, match="(?s)SolverError.*fix the specs.*left as it was"):
        env.apply(env.plan())
    request = Door.calls[0]
    assert request["mode"] == "install" and request["prefix"] == prefix and request["target"] != prefix
    assert request["specs"] == ["mlhost-greet >=5", "mlhost-extra"]
    assert sorted(p.name for p in greet10.parent.iterdir()) == ["greet"]
    assert (greet10 / "conda-meta" / "mlhost-greet-1.0.0-0.json").exists()


def test_captured_records_agree_with_the_captured_channel_index():
    repodata = json.loads((FIXTURES / "conda" / "channel-noarch-repodata.json").read_text())["packages.conda"]
    for env in ("env-greet10", "env-greet11"):
        for record in records(env).values():
            entry = repodata[record["fn"]]
            assert (entry["name"], entry["version"], entry["md5"], entry["depends"]) == (
                record["name"], record["version"], record["md5"], record["depends"])


# --- the pip subsection (the env's python and pip are stand-ins answering through the one door) ----------

def probe_answer(packages):
    return json.dumps({"python": "3.11.10", "prefix": "/x", "packages": packages,
                       "markers": {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                                   "platform_machine": "x86_64", "implementation_name": "cpython", "python_full_version": "3.11.10",
                                   "platform_python_implementation": "CPython", "platform_release": "6.1", "platform_version": "#1",
                                   "implementation_version": "3.11.10"}})


@pytest.fixture
def env_with_python(tmp_path, greet10):
    """The captured env plus a python record and an executable bin/python (a stand-in)."""
    record = {"name": "python", "version": "3.11.10", "build": "h_0", "depends": []}
    (greet10 / "conda-meta" / "python-3.11.10-h_0.json").write_text(json.dumps(record))
    python = greet10 / "bin" / "python"
    python.parent.mkdir(exist_ok=True)
    python.write_text("#!/bin/false\n")
    python.chmod(0o755)
    return greet10


def test_pip_subsection_met_runs_only_the_probe(tmp_path, env_with_python):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    env_file = tmp_path / "environment.yml"
    env_file.write_text("channels: [file:///srv/c]\ndependencies:\n  - mlhost-greet\n  - python=3.11\n  - pip:\n    - six>=1.16\n")
    python = str(env_with_python / "bin" / "python")
    p = params(tmp_path, file=str(env_file), specs=[])
    prefix, req = _conda_env.validate(p)
    assert [s.text for s in req["specs"]] == ["mlhost-greet", "python=3.11", "pip"]
    # pip (added because of the pip subsection) is not in the env yet: that is a conda change, so give it a record
    (env_with_python / "conda-meta" / "pip-24.3-pyh_0.json").write_text(json.dumps({"name": "pip", "version": "24.3", "build": "pyh_0"}))
    runner = FakeRunner({(python, "-I", "-c", _venv.PROBE): (0, probe_answer({"six": "1.17.0", "pip": "24.3"}), "")})
    result = run(p, runner)
    assert result["changed"] is False and len(runner.calls) == 1


def test_pip_subsection_unmet_installs_with_the_envs_own_pip(tmp_path, env_with_python):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    (env_with_python / "conda-meta" / "pip-24.3-pyh_0.json").write_text(json.dumps({"name": "pip", "version": "24.3", "build": "pyh_0"}))
    python = str(env_with_python / "bin" / "python")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env_file = tmp_path / "environment.yml"
    env_file.write_text("dependencies:\n  - mlhost-greet\n  - pip:\n    - six==1.17.0\n")
    p = params(tmp_path, file=str(env_file), specs=[], ca_bundle=str(bundle))
    install = (python, "-m", "pip", "install", "--no-warn-script-location", "-r", str(env_with_python / "conda-meta" / "mlhost-pip-requirements.txt"))

    class Pip(FakeRunner):
        installed = {"six": "1.16.0"}

        def run(self, argv, **kwargs):
            if tuple(argv) == install:
                self.installed = {"six": "1.17.0"}
                self.responses[install] = (0, "Successfully installed six-1.17.0", "")
            self.responses[(python, "-I", "-c", _venv.PROBE)] = (0, probe_answer(self.installed), "")
            return super().run(argv, **kwargs)

    runner = Pip({})
    result = run(p, runner)
    assert result["changed"] is True
    assert result["pip"]["upgraded"] == {"six": {"from": "1.16.0", "to": "1.17.0"}}
    assert list(install) in runner.calls
    pip_env = runner.envs[runner.calls.index(list(install))]
    assert pip_env["PIP_CERT"] == str(bundle)
    assert result["added"] == result["removed"] == result["updated"] == {}


# --- ownership (issue 14) ------------------------------------------------------------------------

def test_lock_files_carry_the_marker_line_and_an_earlier_header_counts_as_ours(tmp_path, greet10):
    lock = tmp_path / "greet.lock"
    result = run(params(tmp_path, lock_file=str(lock)))
    assert result["changed"] and lock.read_text().startswith(_ownership.TEXT_MARKER)
    assert run(params(tmp_path, lock_file=str(lock)))["changed"] is False
    lock.write_text(f"# Explicit lock of {greet10}, written by mlinfra.mlhost.conda_env.\n@EXPLICIT\n")
    assert run(params(tmp_path, lock_file=str(lock)))["changed"] is True
    lock.write_text("my own notes\n")
    with pytest.raises(ModuleError, match="was not written by the collection"):
        run(params(tmp_path, lock_file=str(lock)))
    assert lock.read_text() == "my own notes\n"


@pytest.mark.parametrize("trace", ["lock", "pip-state"])
def test_an_env_an_earlier_version_made_is_recognised_and_marked(tmp_path, greet10, trace):
    (greet10 / _ownership.MARKER).unlink()
    lock = tmp_path / "greet.lock"
    if trace == "lock":
        lock.write_text(f"# Explicit lock of {greet10}, written by mlinfra.mlhost.conda_env.\n@EXPLICIT\n")
    else:
        (greet10 / "conda-meta" / "mlhost-pip-requirements.txt").write_text("six\n")
    result = run(params(tmp_path, lock_file=str(lock) if trace == "lock" else None))
    assert result["changed"] and _ownership.is_owned_dir(str(greet10))
    assert run(params(tmp_path, state="absent"))["changed"] and not greet10.exists()


def test_an_env_the_collection_did_not_make_is_read_but_never_changed_or_removed(tmp_path, greet10):
    (greet10 / _ownership.MARKER).unlink()
    runner = FakeRunner({})
    assert run(params(tmp_path), runner)["changed"] is False  # met: only read
    with pytest.raises(ModuleError, match="did not create"):
        run(params(tmp_path, state="absent"))
    with pytest.raises(ModuleError, match="did not create"):
        run(params(tmp_path, specs=["mlhost-greet=1.1"]))
    assert runner.calls == [] and (greet10 / "conda-meta" / "mlhost-greet-1.0.0-0.json").exists()


def test_a_new_env_made_by_the_cli_is_marked(tmp_path):
    conda = base_with(tmp_path, "conda")
    p = params(tmp_path, engine="conda", specs=["mlhost-data=1.0"], channels=[], prefix=str(tmp_path / "envs" / "data"))
    create = _conda_env.conda_command(conda, "create", p["prefix"], [], ["mlhost-data=1.0"])
    dry = _conda_env.conda_command(conda, "create", p["prefix"], [], ["mlhost-data=1.0"], dry_run=True)
    link = {"success": True, "actions": {"LINK": [{"name": "mlhost-data", "version": "1.0.0", "build_string": "0"}]}}

    class Creating(FakeRunner):
        def run(self, argv, **kwargs):
            if argv == create:
                shutil.copytree(FIXTURES / "conda" / "env-greet10" / "conda-meta", tmp_path / "envs" / "data" / "conda-meta")
            return super().run(argv, **kwargs)

    runner = Creating({tuple(create): (0, json.dumps(link), ""), tuple(dry): (0, json.dumps(link), "")})
    result = run(p, runner)
    assert result["changed"] and runner.calls == [dry, create]
    assert _ownership.is_owned_dir(str(tmp_path / "envs" / "data"))
    assert result["diff"] == {"before": "", "after": "mlhost-data==1.0.0\n"}


# --- issue 15 item 5: real-shaped environment.yml files, the channels override, the pip subsection, cleanup ----------

# Shaped like the environment.yml files projects publish (written for these tests): a byte-order mark, the channels of
# a PyTorch/NVIDIA project with defaults last, an editable install of the project, a git checkout, an extra index with
# credentials in its user-info.
REAL_SHAPED = ("\ufeffname: train\nchannels:\n  - pytorch\n  - nvidia\n  - conda-forge\n  - defaults\ndependencies:\n"
               "  - python=3.11\n  - mlhost-greet=1.0  # the test channel's\n  - pip\n  - pip:\n"
               "    - --extra-index-url https://user:s3cr3tt0ken@pypi.corp.example/simple\n"
               "    - -e .\n    - -e git+https://github.com/org/tool.git@v1.2#egg=tool\n    - six==1.17.0\n")


def write_env(tmp_path, text, name="environment.yml"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def refusal(tmp_path, **overrides):
    with pytest.raises(ModuleError) as info:
        _conda_env.validate(params(tmp_path, **overrides))
    msg = info.value.msg
    assert "s3cr3tt0ken" not in msg and "Nothing was changed" in msg
    # conda_env has neither option: the message may not send the user to them
    assert "extra_index_urls" not in msg and "constraints" not in msg
    return msg


def test_a_real_shaped_file_is_refused_for_defaults_and_names_the_override(tmp_path):
    env_file = write_env(tmp_path, REAL_SHAPED)
    msg = refusal(tmp_path, file=env_file, specs=[], channels=[])
    assert "'defaults'" in msg and "set the channels option" in msg and "replaces the file's channels" in msg


def test_a_real_shaped_file_with_the_override_is_refused_for_its_editable_installs(tmp_path):
    env_file = write_env(tmp_path, REAL_SHAPED)
    msg = refusal(tmp_path, file=env_file, specs=[])
    assert "line 2" in msg and "'-e .'" in msg and "editable install" in msg and "name @ git+https://" in msg


def test_a_real_shaped_file_without_its_editables_is_used_with_the_override(tmp_path):
    env_file = write_env(tmp_path, REAL_SHAPED.replace("    - -e .\n", "").replace(
        "    - -e git+https://github.com/org/tool.git@v1.2#egg=tool\n", "    - tool @ git+https://github.com/org/tool.git@v1.2\n"))
    _prefix, req = _conda_env.validate(params(tmp_path, prefix=None, conda=str(tmp_path / "base"), file=env_file, specs=[]))
    assert req["channels"] == ["file:///srv/conda-channel"]
    assert req["channels_replaced"] == {"file": ["pytorch", "nvidia", "conda-forge", "defaults"], "by": ["file:///srv/conda-channel"]}
    assert [s.text for s in req["specs"]] == ["python=3.11", "mlhost-greet=1.0", "pip"]  # the BOM did not stick to a key
    assert req["pip"] == ["tool @ git+https://github.com/org/tool.git@v1.2", "six==1.17.0"]
    assert req["pip_sources"] == {"index_url": None, "extra_index_urls": ["https://user:s3cr3tt0ken@pypi.corp.example/simple"],
                                  "find_links": []}


@pytest.mark.parametrize("line,expect", [
    ("-e .", "editable install"),
    ("--editable=.", "editable install"),
    ("-e git+https://github.com/org/tool.git#egg=tool", "editable install"),
    ("-e /srv/src/tool", "editable install"),
    ("-r other-requirements.txt", "pip option -r"),
    ("-c pins.txt", "pip option -c"),
    ("--pre", "pip option --pre"),
    ("--trusted-host pypi.corp.example", "pip option --trusted-host"),
    ("./tool", "without a project name"),
    ("/srv/wheels/tool-1.0-py3-none-any.whl", "without a project name"),
    ("git+https://github.com/org/tool.git", "without a project name"),
    ("https://user:s3cr3tt0ken@h.example/tool-1.0.tar.gz", "without a project name"),
    ("tool @ file:///nonexistent/tool-1.0-py3-none-any.whl", "does not exist on the host"),
    ("--find-links /nonexistent/wheels", "not a directory on the host"),
    ("--find-links wheels", "relative directory"),
    ("--find-links file:///nonexistent/wheels", "does not exist on the host"),
    ("--index-url", "needs one URL"),
    ("--index-url ftp://user:s3cr3tt0ken@h.example/simple", "is not an http"),
    ("numpy >=<1", "not a valid requirement"),
    ("tool @ https://user:s3cr3tt0ken@h.example/tool.whl ; python_version >=<", "not a valid requirement"),
])
def test_pip_subsection_lines_are_refused_before_anything_with_what_to_do(tmp_path, line, expect):
    env_file = write_env(tmp_path, f"channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip:\n    - six\n    - '{line}'\n")
    msg = refusal(tmp_path, file=env_file, specs=[], channels=[])
    assert expect in msg and "line 2" in msg


def test_two_index_urls_and_an_index_url_beside_the_option_are_refused(tmp_path):
    two = write_env(tmp_path, "dependencies:\n  - pip:\n    - --index-url https://a.example/simple\n    - -i https://b.example/simple\n")
    assert "second --index-url" in refusal(tmp_path, file=two, specs=[])
    one = write_env(tmp_path, "dependencies:\n  - pip:\n    - --index-url https://a.example/simple\n    - six\n", "one.yml")
    assert "pip uses one index" in refusal(tmp_path, file=one, specs=[], index_url="https://mirror.example/simple")
    _conda_env.validate(params(tmp_path, file=one, specs=[], index_url="https://a.example/simple"))  # the same: no conflict


def test_the_pip_subsection_is_checked_even_where_the_host_python_has_no_packaging(tmp_path, greet10, monkeypatch):
    # The check used to run only when rq.have_packaging() said the host's Python had packaging (a stock Debian target
    # has none): -e . passed the plan and the real run built the conda env, then pip failed in it. The check no longer
    # asks: packaging comes from the module's own sources (_requirements.load_packaging), and a check-mode run refuses.
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements
    monkeypatch.setattr(_requirements, "have_packaging", lambda: False)
    env_file = write_env(tmp_path, "channels: [file:///srv/c]\ndependencies:\n  - mlhost-greet\n  - pip:\n    - -e .\n")
    runner = FakeRunner({})
    new_prefix = tmp_path / "envs" / "new"
    with pytest.raises(ModuleError, match="editable install"):
        run(params(tmp_path, file=env_file, specs=[], prefix=str(new_prefix)), runner, check_mode=True)
    with pytest.raises(ModuleError, match="editable install"):
        run(params(tmp_path, file=env_file, specs=[], prefix=str(new_prefix)), runner)
    assert runner.calls == [] and not new_prefix.exists()


def test_pip_index_lines_reach_pip_in_its_environment_never_in_argv_or_output(tmp_path, env_with_python):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    (env_with_python / "conda-meta" / "pip-24.3-pyh_0.json").write_text(json.dumps({"name": "pip", "version": "24.3", "build": "pyh_0"}))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    python = str(env_with_python / "bin" / "python")
    env_file = write_env(tmp_path, "dependencies:\n  - mlhost-greet\n  - pip:\n"
                         "    - --index-url https://user:s3cr3tt0ken@pypi.corp.example/simple\n"
                         "    - --extra-index-url=https://x.example/simple?token=s3cr3tt0ken\n"
                         f"    - --find-links {wheels}\n    - -f https://wheels.example/\n    - six==1.17.0\n")
    install = (python, "-m", "pip", "install", "--no-warn-script-location", "-r", str(env_with_python / "conda-meta" / "mlhost-pip-requirements.txt"))

    class Pip(FakeRunner):
        installed = {"six": "1.16.0"}

        def run(self, argv, **kwargs):
            if tuple(argv) == install:
                self.installed = {"six": "1.17.0"}
                self.responses[install] = (0, "Successfully installed six-1.17.0", "")
            self.responses[(python, "-I", "-c", _venv.PROBE)] = (0, probe_answer(self.installed), "")
            return super().run(argv, **kwargs)

    runner = Pip({})
    result = run(params(tmp_path, file=env_file, specs=[], find_links=["/srv/wheelhouse"]), runner)
    assert result["changed"] and result["pip"]["upgraded"] == {"six": {"from": "1.16.0", "to": "1.17.0"}}
    pip_env = runner.envs[runner.calls.index(list(install))]
    assert pip_env["PIP_INDEX_URL"] == "https://user:s3cr3tt0ken@pypi.corp.example/simple"
    assert pip_env["PIP_EXTRA_INDEX_URL"] == "https://x.example/simple?token=s3cr3tt0ken"
    assert pip_env["PIP_FIND_LINKS"] == f"/srv/wheelhouse {wheels} https://wheels.example/"
    state = env_with_python / "conda-meta" / "mlhost-pip-requirements.txt"
    assert state.read_text() == "six==1.17.0\n" and (state.stat().st_mode & 0o077) == 0
    assert "s3cr3tt0ken" not in json.dumps(result) and "s3cr3tt0ken" not in json.dumps(runner.calls)


def test_the_override_is_reported_in_check_mode_and_a_changed_override_is_a_change(tmp_path, greet10):
    conda = base_with(tmp_path, "conda")
    env_file = write_env(tmp_path, "channels: [pytorch, nvidia, conda-forge, defaults]\ndependencies:\n  - mlhost-greet=1.0\n"
                         "  - mlhost-extra\n")
    p = params(tmp_path, engine="conda", file=env_file, specs=[], channels=["file:///srv/a"])
    # An env from before the collection kept its channels: not compared (nothing to compare with), so met.
    plan = run(p, FakeRunner({}), check_mode=True)
    assert plan["changed"] is False and plan["channels_changed"] is False
    assert plan["channels"] == ["file:///srv/a"]
    assert plan["channels_replaced"] == {"file": ["pytorch", "nvidia", "conda-forge", "defaults"], "by": ["file:///srv/a"]}
    _conda_env.write_channels_state(str(greet10), ["file:///srv/a"])
    assert run(p, FakeRunner({}))["changed"] is False
    # Another override: the env is solved again against the new channels (here the stand-in CLI: a dry run, an install).
    p["channels"] = ["file:///srv/b"]
    specs = ["mlhost-greet=1.0", "mlhost-extra"]
    dry = _conda_env.conda_command(conda, "install", str(greet10), ["file:///srv/b"], specs, dry_run=True)
    install = _conda_env.conda_command(conda, "install", str(greet10), ["file:///srv/b"], specs)
    nothing = (0, json.dumps({"success": True, "message": "All requested packages already installed.", "actions": {}}), "")
    plan = run(p, FakeRunner({tuple(dry): nothing}), check_mode=True)
    assert plan["changed"] is True and plan["channels_changed"] is True and plan["channels"] == ["file:///srv/b"]
    runner = FakeRunner({tuple(dry): nothing, tuple(install): nothing})
    assert run(p, runner)["changed"] is True and runner.calls == [dry, install]
    assert _conda_env.read_channels_state(str(greet10)) == _conda_env.channels_fingerprint(["file:///srv/b"])
    again = run(p, FakeRunner({}))
    assert again["changed"] is False
    # the record is not taken for a package record (conda-meta/*.json are those): no "unreadable record" warning
    assert _conda.read_records(Sysroot("/"), str(greet10))[1] == []


def test_plain_channels_are_shown_and_a_channel_with_a_token_stays_hidden(tmp_path):
    class Module:
        no_log_values = {"conda-forge", "https://u:tok@mirror.example/c", "https://conda.example/t/tok/c", "file:///srv/c"}

    class Host:
        module = Module()

    _conda_env.reveal_plain_channels(Host(), sorted(Module.no_log_values))
    assert Module.no_log_values == {"https://u:tok@mirror.example/c", "https://conda.example/t/tok/c"}


def new_env_with_failing_pip(tmp_path, engine_runner_class=FakeRunner):
    """A new env by the stand-in conda CLI (it copies captured records and a stand-in bin/python), whose pip step fails."""
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    conda = base_with(tmp_path, "conda")
    prefix = tmp_path / "envs" / "new"
    env_file = write_env(tmp_path, "dependencies:\n  - mlhost-greet=1.0\n  - pip:\n    - nosuchpkg==9.9\n")
    p = params(tmp_path, engine="conda", file=env_file, specs=[], channels=[], prefix=str(prefix))
    specs = ["mlhost-greet=1.0", "pip"]
    create = _conda_env.conda_command(conda, "create", str(prefix), [], specs)
    dry = _conda_env.conda_command(conda, "create", str(prefix), [], specs, dry_run=True)
    python = str(prefix / "bin" / "python")
    install = (python, "-m", "pip", "install", "--no-warn-script-location", "-r", str(prefix / "conda-meta" / "mlhost-pip-requirements.txt"))
    link = {"success": True, "actions": {"LINK": [{"name": "mlhost-greet", "version": "1.0.0", "build_string": "0"}]}}

    class Creating(FakeRunner):
        def run(self, argv, **kwargs):
            if argv == create:
                shutil.copytree(FIXTURES / "conda" / "env-greet10" / "conda-meta", prefix / "conda-meta")
                (prefix / "conda-meta" / "pip-24.3-pyh_0.json").write_text(json.dumps({"name": "pip", "version": "24.3", "build": "pyh_0"}))
                (prefix / "bin").mkdir()
                (prefix / "bin" / "python").write_text("#!/bin/false\n")
                (prefix / "bin" / "python").chmod(0o755)
            return super().run(argv, **kwargs)

    runner = Creating({tuple(create): (0, json.dumps(link), ""), tuple(dry): (0, json.dumps(link), ""),
                       (python, "-I", "-c", _venv.PROBE): (0, probe_answer({"pip": "24.3"}), ""),
                       install: (1, "", "ERROR: No matching distribution found for nosuchpkg==9.9")})
    return p, prefix, runner


def test_a_new_env_whose_pip_step_fails_is_removed(tmp_path):
    p, prefix, runner = new_env_with_failing_pip(tmp_path)
    with pytest.raises(ModuleError, match="pip could not install") as info:
        run(p, runner)
    assert info.value.details["failing"] == ["nosuchpkg"]
    assert not prefix.exists() and sorted(x.name for x in prefix.parent.iterdir()) == []
    # the next run plans the whole env again (not a half-built one taken as made)
    assert run(p, runner, check_mode=True)["changed"] is True


def test_an_existing_env_whose_pip_update_fails_under_rattler_is_put_back(tmp_path, env_with_python, monkeypatch):
    # rattler builds beside and swaps; a failed pip step after the swap swaps the old env back. The py-rattler link is a
    # stand-in here (a copy of the captured env); molecule/conda runs the real one.
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    (env_with_python / "conda-meta" / "pip-24.3-pyh_0.json").write_text(json.dumps({"name": "pip", "version": "24.3", "build": "pyh_0"}))
    (env_with_python / "old-one").write_text("the env before the run\n")
    env_file = write_env(tmp_path, "dependencies:\n  - mlhost-greet=1.0\n  - mlhost-data >=1\n  - pip:\n    - nosuchpkg==9.9\n")
    p = params(tmp_path, file=env_file, specs=[])
    env = _conda_env.CondaEnv(make_host(p))

    def stand_in_rattler(mode, prefix, target, req, before):
        if mode == "install":
            shutil.copytree(prefix, target, ignore=shutil.ignore_patterns("old-one"))
        return [dict(r, name=n) for n, r in before.items()]

    monkeypatch.setattr(env, "ensure_tools", lambda need_rattler: True)
    monkeypatch.setattr(env, "tools_ready", lambda need_rattler: True)
    monkeypatch.setattr(env, "rattler", stand_in_rattler)
    python = str(env_with_python / "bin" / "python")
    install = (python, "-m", "pip", "install", "--no-warn-script-location", "-r", str(env_with_python / "conda-meta" / "mlhost-pip-requirements.txt"))
    p["prune"] = True  # mlhost-extra is outside the request: a conda change, so rattler rebuilds
    env.runner = FakeRunner({(python, "-I", "-c", _venv.PROBE): (0, probe_answer({"pip": "24.3"}), ""),
                             install: (1, "", "ERROR: No matching distribution found for nosuchpkg==9.9")})
    with pytest.raises(ModuleError, match="pip could not install"):
        env.apply(env.plan())
    assert (env_with_python / "old-one").exists()  # the old env is back
    assert sorted(x.name for x in env_with_python.parent.iterdir()) == ["greet"]
