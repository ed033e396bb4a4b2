# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input, refused before any change (issue 9), at unit level.

Each case runs a module's real main() (argument spec and validation code of
plugins/module_utils) with the one command door closed: any command through
``Runner.run`` or ``AnsibleModule.run_command``, and any download, fails the
test. Each case must exit 1 with a message holding the expected words (the
problem, and the fix where there is one), without a traceback, and the files
the case points at (a tree under tmp_path) must be byte for byte as before.

The molecule scenario ``bad_input`` runs the same kinds of input on real
Debian 12 and 13 hosts (molecule/bad_input/vars/cases.yml); the last tests here
keep docs/reliability.md's table equal to that file.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _build_tools, _cuda_toolkit, _nvidia_driver, _run
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker, snapshot

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES_FILE = ROOT / "molecule" / "bad_input" / "vars" / "cases.yml"
DOC = ROOT / "docs" / "reliability.md"
ZEROS = "0" * 64


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Input files as prepare.yml writes them, and the command door closed."""
    base = tmp_path / "srv"
    (base / "envs").mkdir(parents=True)
    (base / "bad-requirements.txt").write_text("six==1.17.0\nnumpy>>1.26\n")
    (base / "pip-option-requirements.txt").write_text("-e ./myproject\nsix\n")
    (base / "bad-environment.yml").write_text("name: train\ndependencies:\n  - python=3.11\n  - [numpy\n")
    (base / "Miniforge3-fake.sh").write_text("#!/bin/sh\nexit 1\n")
    (base / "python-install" / "bin").mkdir(parents=True)
    (base / "python-install" / "bin" / "python3").write_text("#!/bin/sh\n")
    os.symlink("/usr", base / "usr-link")
    calls: list = []

    def closed(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a command ran for bad input: {args}")

    monkeypatch.setattr(_run.Runner, "run", closed)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", closed)
    return base, calls


def run_main(module: str, args: dict, capsys) -> tuple[int, dict]:
    main = importlib.import_module(f"ansible_collections.mlinfra.mlhost.plugins.modules.{module}").main
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


# (module, args with {b} for the input directory, expected words, what it is)
CASES = [
    ("host_facts", {"sysroot": "{b}/no-such-root"}, "is not a directory", "sysroot that does not exist"),
    ("host_facts", {"smi_timeout": 0}, "smi_timeout must be at least 1 second", "time limit of 0"),
    ("build_tools", {"profiles": ["cuda"]}, "value of profiles must be one or more of", "unknown profile"),
    ("build_tools", {"profiles": ["git"], "extra_packages": ["curl; rm -rf /"]}, "has invalid package names", "shell text as a package"),
    ("nvidia_driver", {"branch": "55x", "_ansible_check_mode": True}, "is not a driver branch", "malformed branch"),
    ("nvidia_driver", {"version": "550.abc", "_ansible_check_mode": True}, "is not a driver version", "malformed version"),
    ("nvidia_driver", {"branch": "535", "version": "550.54.14"}, "not on branch 535", "branch and version disagree"),
    ("nvidia_driver", {"source": "nvidia_repo", "repo_key": "http://127.0.0.1:2271/k.pub"}, "plain-http URL without repo_key_fingerprints or repo_key_sha256",
     "plain-http key without a checksum"),
    ("nvidia_driver", {"source": "nvidia_repo", "repo_key": "https://x.invalid/k.pub", "repo_key_sha256": "abc"}, "64 hexadecimal",
     "malformed key checksum"),
    ("cuda_toolkit", {"version": "12.7", "driver_version": "570.86.10", "_ansible_check_mode": True}, "CUDA 12.7 does not exist",
     "CUDA that does not exist"),
    ("cuda_toolkit", {"version": "twelve", "driver_version": "570.86.10", "_ansible_check_mode": True}, "is not a CUDA version",
     "malformed CUDA version"),
    ("cuda_toolkit", {"version": "12.4", "driver_version": "five-fifty", "_ansible_check_mode": True}, "is not a driver version",
     "malformed planned driver"),
    ("python_env", {"path": "venvs/torch", "packages": ["six"]}, "must be an absolute path", "relative path"),
    ("python_env", {"path": "/usr", "packages": ["six"]}, "is inside /usr, which belongs to the system", "the system prefix"),
    ("python_env", {"path": "/usr/local/lib/python3/dist-packages", "packages": ["six"]}, "belongs to the system", "below /usr"),
    ("python_env", {"path": "{b}/usr-link", "packages": ["six"]}, "(a link to /usr) is inside /usr", "a symlink to /usr"),
    ("python_env", {"path": "{b}/usr-link", "packages": ["six"], "state": "absent"}, "(a link to /usr) is inside /usr",
     "removing a symlink to /usr"),
    ("python_env", {"path": "{b}/python-install", "packages": ["six"]}, "is a Python installation's own prefix",
     "a Python installation's prefix"),
    ("python_env", {"path": "{b}/envs/a", "python": "python3.99", "packages": ["six"]}, "Python interpreter 'python3.99' was not found",
     "missing interpreter"),
    ("python_env", {"path": "{b}/envs/a", "requirements": "{b}/none.txt"}, "does not exist on the host", "missing requirements"),
    ("python_env", {"path": "{b}/envs/a", "requirements": "{b}/bad-requirements.txt"}, "line 2: 'numpy>>1.26' is not a valid requirement",
     "malformed requirements file"),
    ("python_env", {"path": "{b}/envs/a", "requirements": "{b}/pip-option-requirements.txt"},
     "is an editable install (-e)", "editable line inside requirements"),
    ("python_env", {"path": "{b}/envs/a", "packages": ["numpy>>1.26"]}, "'numpy>>1.26' is not a valid requirement", "malformed package"),
    ("python_env", {"path": "{b}/envs/a", "packages": ["six"], "torch_cuda": "cu12"}, "torch_cuda 'cu12' is not valid", "malformed tag"),
    ("python_env", {"path": "{b}/envs/a", "packages": ["six"], "offline": True}, "offline: true needs find_links", "offline, no wheels"),
    ("python_env", {"path": "{b}/envs/a", "packages": ["six"], "mode": "0777"}, "world-writable", "world-writable env"),
    ("miniforge", {"prefix": "miniforge3", "installer": "{b}/Miniforge3-fake.sh", "sha256": ZEROS}, "must be an absolute path",
     "relative prefix"),
    ("miniforge", {"prefix": "/usr", "installer": "{b}/Miniforge3-fake.sh", "sha256": ZEROS}, "is inside /usr, which belongs to the system",
     "prefix /usr"),
    ("miniforge", {"prefix": "{b}/usr-link", "installer": "{b}/Miniforge3-fake.sh", "sha256": ZEROS}, "(a link to /usr)",
     "prefix linked to /usr"),
    ("miniforge", {"prefix": "{b}/mf", "installer": "https://x.invalid/Miniforge3.sh"}, "sha256 is not set", "https URL, no sha256"),
    ("miniforge", {"prefix": "{b}/mf", "installer": "http://x.invalid/Miniforge3.sh"}, "Plain http:// is readable", "http URL, no sha256"),
    ("miniforge", {"prefix": "{b}/mf", "installer": "{b}/Miniforge3-fake.sh", "sha256": "abc"}, "is not a SHA-256 hex digest",
     "malformed sha256"),
    ("miniforge", {"prefix": "{b}/opt/mf", "installer": "{b}/Miniforge3-fake.sh", "sha256": ZEROS}, "it was not run",
     "wrong sha256 (nothing written, not even the parent)"),
    ("miniforge", {"prefix": "{b}/mf", "installer": "{b}/Miniforge3-fake.sh", "sha256": ZEROS, "channels": ["defaults"]},
     "repository, whose terms of service require a paid licence", "defaults channel (the value itself is no_log, so masked)"),
    ("conda_env", {"name": "train", "prefix": "{b}/envs/c", "specs": ["python=3.11"]}, "mutually exclusive", "name and prefix"),
    ("conda_env", {"prefix": "envs/train", "specs": ["python=3.11"]}, "must be an absolute path", "relative prefix"),
    ("conda_env", {"prefix": "{b}/usr-link", "specs": ["python=3.11"]}, "(a link to /usr)", "prefix linked to /usr"),
    ("conda_env", {"prefix": "{b}/envs/c", "file": "{b}/bad-environment.yml"}, "bad-environment.yml", "malformed environment.yml"),
    ("conda_env", {"prefix": "{b}/envs/c", "specs": ["numpy>>=1.26"]}, "match spec 'numpy>>=1.26' is not valid", "malformed spec"),
    ("conda_env", {"name": "train", "conda": "{b}/no-conda", "specs": ["python=3.11"]}, "does not exist", "missing conda base"),
    ("stack_check", {"checks": ["python"]}, "python_env is not set", "python check, no env"),
    ("stack_check", {"checks": ["python"], "python_env": "{b}/envs/a", "framework": "torch; rm -rf /"}, "is not auto, torch, jax",
     "framework that is shell text"),
]


def _fill(value, base):
    if isinstance(value, str):
        return value.replace("{b}", str(base))
    if isinstance(value, list):
        return [_fill(v, base) for v in value]
    return value


@pytest.mark.parametrize("module, args, words, about", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_bad_input_is_refused_before_any_change(module, args, words, about, host, capsys):
    base, calls = host
    before = snapshot(base.parent)
    code, result = run_main(module, {k: _fill(v, base) for k, v in args.items()}, capsys)
    assert code == 1 and result.get("failed") is True, result
    assert words in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result) and "MODULE FAILURE" not in result["msg"]
    assert calls == []
    assert snapshot(base.parent) == before


@pytest.mark.parametrize("release", ["alpine", "void"])
def test_an_unsupported_distro_is_refused_by_every_package_module(release, tmp_path):
    """No apt and no dnf: build_tools, nvidia_driver and cuda_toolkit refuse, naming the distro, and run nothing."""
    root = Sysroot(str(tmp_path))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(f'ID={release}\nNAME="{release.title()} Linux"\nVERSION_ID=3.20\n')
    runner = FakeRunner({})
    bt = {"profiles": ["git"], "extra_packages": [], "state": "present", "pkg_mgr": "auto", "update_cache": True,
          "cache_valid_time": 86400, "lock_timeout": 300, "install_recommends": False}
    with pytest.raises(ModuleError, match="No supported package manager on"):
        _build_tools.BuildTools(make_host(bt, runner, check_mode=True, sysroot=root)).plan()
    drv = {"branch": "550", "version": "", "flavor": "auto", "source": "auto", "repo_url": "", "repo_key": "", "repo_key_sha256": "",
           "hold": True, "blacklist_nouveau": True, "persistence": True, "exclude_from_automatic_upgrades": True,
           "mok_certificate": "", "mok_key": "", "hold_kernel": False, "kernel_modules": "auto", "kernel_headers": True, "server_packages": True,
           "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    with pytest.raises(ModuleError, match="No supported package manager on Alpine Linux|No supported package manager on Void Linux"):
        run_worker(_nvidia_driver.Driver, make_host(drv, runner, check_mode=True, sysroot=root))
    cuda = {"version": "12.4", "source": "auto", "driver_version": "570.86.10", "allow_minor_version_compat": False, "set_default": True,
            "check_space": True, "repo_url": "", "repo_key": "", "repo_key_sha256": "", "state": "present", "pkg_mgr": "auto",
            "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    with pytest.raises(ModuleError, match="No supported package manager on .*cuda_toolkit supports apt and dnf"):
        run_worker(_cuda_toolkit.Toolkit, make_host(cuda, runner, check_mode=True, sysroot=root))
    assert runner.calls == []


def test_debian12_os_release_fixture_is_supported(tmp_path):
    """The other side of the distro test: the same code accepts the Debian 12 host it is run against."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(fixture_text("os-release/debian12"))
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "apt-get").write_text("")
    pm, _names, distro = _build_tools.resolve_host({"profiles": ["git"], "extra_packages": [], "pkg_mgr": "auto"}, Sysroot(str(tmp_path)),
                                                   FakeRunner({}))
    assert pm.name == "apt" and distro["id"] == "debian"


# --- the molecule scenario's cases and the doc's table -----------------------------
def scenario_cases() -> list[dict]:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def test_scenario_cases_cover_every_module_and_role():
    cases = scenario_cases()
    assert len(cases) >= 30
    assert len({c["id"] for c in cases}) == len(cases)
    assert {c["module"] for c in cases if "module" in c} == {
        "host_facts", "build_tools", "python_env", "nvidia_driver", "cuda_toolkit", "miniforge", "conda_env", "stack_check"}
    assert {c["role"] for c in cases if "role" in c} == {"build_tools", "python_env", "nvidia_driver", "cuda_toolkit", "miniforge", "ml_host"}
    for case in cases:
        assert case["expect"] and case["about"] and ("module" in case) != ("role" in case), case


BEGIN = "<!-- bad-input table: made from molecule/bad_input/vars/cases.yml by tests/unit/test_bad_input.py (MLHOST_WRITE_DOC=1) -->"
END = "<!-- end of bad-input table -->"


def doc_table(cases: list[dict]) -> str:
    """The doc's table of scenario cases: one row per case."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    rows = [BEGIN, "", "| # | module or role | input | what it is | the message holds |", "|---|---|---|---|---|"]
    for number, case in enumerate(cases, start=1):
        if "module" in case:
            what = f"`{case['module']}`" + (" (check mode)" if case.get("check") else "")
            given = ", ".join(f"{k}: {json.dumps(v)}" for k, v in case["args"].items())
        else:
            what = f"role `{case['role']}`" + (f" ({case['tasks_from']})" if case.get("tasks_from") else "")
            given = ", ".join(f"{k}: {json.dumps(v)}" for k, v in case["role_vars"].items())
        rows.append(f"| {number} | {what} | `{cell(given)}` | {cell(case['about'])} | {cell(case['expect'])} |")
    modules = sum(1 for c in cases if "module" in c)
    rows += ["", f"{len(cases)} cases: {modules} module cases, {len(cases) - modules} role cases.", "", END]
    return "\n".join(rows)


def test_reliability_doc_table_is_made_from_the_scenario_cases():
    """docs/reliability.md holds the table made from cases.yml (MLHOST_WRITE_DOC=1 pytest -k doc_table rewrites it)."""
    text = DOC.read_text(encoding="utf-8")
    if os.environ.get("MLHOST_WRITE_DOC") == "1":
        marker = "(filled by the `bad_input` scenario and `tests/unit/test_bad_input.py`)"
        start, stop = (text.index(BEGIN), text.index(END) + len(END)) if BEGIN in text else (text.index(marker), text.index(marker) + len(marker))
        text = text[:start] + doc_table(scenario_cases()) + text[stop:]
        DOC.write_text(text, encoding="utf-8")
    assert BEGIN in text and END in text
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    assert current == doc_table(scenario_cases()), "run: MLHOST_WRITE_DOC=1 bash scripts/test.sh unit (rewrites the doc's table)"


def test_a_tool_venv_that_fails_to_be_made_is_removed(tmp_path):
    """No python3-venv: `python3 -m venv` fails half way; the run removes what it made (tool_dir included), nothing is left."""
    import sys as _sys

    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

    tool_dir = tmp_path / "tools"
    venv = _venv.tool_paths(str(tool_dir))["venv"]

    class HalfMade(FakeRunner):
        def run(self, argv, **kwargs):
            (pathlib.Path(venv) / "bin").mkdir(parents=True)  # what a venv without ensurepip leaves behind
            return super().run(argv, **kwargs)

    runner = HalfMade({(_sys.executable, "-m", "venv", venv): (1, "", "ensurepip is not available")})
    with pytest.raises(ModuleError, match="Install python3-venv") as err:
        _venv.ensure_tool_venv(runner, venv, ["uv==1"], python=_sys.executable)
    assert err.value.details["stage"] == "venv"
    assert not tool_dir.exists()
