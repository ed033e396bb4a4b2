# SPDX-License-Identifier: GPL-3.0-or-later
"""python_env against bad input, as an adversarial user would give it (issue 14).

Each case runs the worker's plan() on a fixture tree with the command door closed (FakeRunner with
no responses: any command fails the test). Each must raise ModuleError whose message names the
option and says what to do, with no secret in it; no command may run and the tree must be byte for
byte as before. The interpreter cases allow only the interpreter's own probe.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _ownership, _python_env, _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from mlhost_testlib import FakeRunner, make_host, snapshot

TOKEN = "SECRETTOKEN42"
PROBE = _python_env.INTERPRETER_PROBE


def params(base: pathlib.Path, **overrides):
    p = {"path": str(base / "envs" / "a"), "python": "/usr/bin/python3", "packages": ["six==1.17.0"],
         "requirements": None, "constraints": None, "backend": "pip", "index_url": None, "extra_index_urls": [],
         "find_links": [], "offline": False, "torch_cuda": "auto", "torch_index_url": "https://download.pytorch.org/whl",
         "lock_file": None, "ca_bundle": None, "owner": None, "group": None, "mode": None,
         "tool_dir": str(base / "tools"), "state": "present", "proxy_env": {}}
    p.update(overrides)
    return p


@pytest.fixture
def base(tmp_path):
    b = tmp_path / "srv"
    (b / "envs").mkdir(parents=True)
    (b / "wheelhouse").mkdir()
    (b / "plain").mkdir()
    (b / "plain" / "data.csv").write_text("a,b\n1,2\n")
    (b / "plainfile").write_text("not an env\n")
    os.symlink(b / "plain", b / "plain-link")
    (b / "venv-other").mkdir()
    (b / "venv-other" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (b / "foreign.lock").write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(b / "foreign.lock", b / "foreign-link.lock")
    os.symlink("/usr", b / "usr-link")
    os.symlink("/etc", b / "etc-link")
    os.symlink("/var/log", b / "log-link")
    os.symlink("/usr/lib", b / "envs" / "lib-link")
    (b / "req-token.txt").write_text(f"six==1.17.0\n-e git+https://user:{TOKEN}@git.example.internal/repo.git#egg=repo\n")
    (b / "req-ftp-index.txt").write_text(f"--index-url ftp://user:{TOKEN}@pypi.example.internal/simple\nsix==1.17.0\n")
    (b / "req-cycle-a.txt").write_text("-r req-cycle-b.txt\nsix\n")
    (b / "req-cycle-b.txt").write_text("-c req-cycle-a.txt\n")
    (b / "req-hash-partial.txt").write_text("six==1.17.0 --hash=sha256:" + "ab" * 32 + "\nidna==3.10\n")
    (b / "req-pre.txt").write_text("--pre\nsix\n")
    (b / "req-env-var.txt").write_text("--extra-index-url https://${PYPI_TOKEN}@pypi.example.internal/simple\nsix\n")
    (b / "req-url-marker.txt").write_text(f"six @ https://user:{TOKEN}@files.example.internal/six.whl ; rm -rf /\n")
    (b / "req-shell.txt").write_text("numpy; rm -rf /\n")
    (b / "req-latin1.txt").write_bytes(b"caf\xe9==1.0\n")
    (b / "reqdir").mkdir()
    (b / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    return b


def fill(value, b):
    if isinstance(value, str):
        return value.replace("{b}", str(b))
    if isinstance(value, list):
        return [fill(v, b) for v in value]
    return value


# (overrides with {b} for the fixture tree, the option the message must name, more words it must hold, what it is)
CASES = [
    # system paths: never a target, present or absent
    ({"path": "/var/log", "state": "absent"}, "path", "directly under /var", "remove /var/log"),
    ({"path": "/var/log"}, "path", "directly under /var", "env at /var/log"),
    ({"path": "/var/spool", "packages": ["six"]}, "path", "directly under /var", "swap /var/spool"),
    ({"path": "/var/spool", "state": "absent"}, "path", "directly under /var", "remove /var/spool"),
    ({"path": "/home/alice"}, "path", "directly under /home", "a home directory"),
    ({"path": "/home/alice", "state": "absent"}, "path", "directly under /home", "remove a home directory"),
    ({"path": "/opt"}, "path", "is a system directory", "/opt itself"),
    ({"path": "/opt", "state": "absent"}, "path", "is a system directory", "remove /opt"),
    ({"path": "/usr/local"}, "path", "belongs to the system", "/usr/local"),
    ({"path": "/usr/local/lib/python3/dist-packages"}, "path", "belongs to the system", "below /usr"),
    ({"path": "/etc/env"}, "path", "belongs to the system", "below /etc"),
    ({"path": "/"}, "path", "root directory", "the root"),
    ({"path": "/var/lib/env"}, "path", "belongs to the system", "below /var/lib"),
    ({"path": "/srv"}, "path", "is a system directory", "/srv itself"),
    ({"path": "/tmp", "state": "absent"}, "path", "is a system directory", "remove /tmp"),
    ({"path": "/root"}, "path", "is a system directory", "/root"),
    ({"path": "/boot/env"}, "path", "belongs to the system", "below /boot"),
    # symlinks into system trees, made in tmp_path
    ({"path": "{b}/usr-link"}, "path", "a link to /usr", "a symlink to /usr"),
    ({"path": "{b}/usr-link", "state": "absent"}, "path", "a link to /usr", "remove a symlink to /usr"),
    ({"path": "{b}/etc-link/env"}, "path", "a link to /etc/env", "through a symlinked parent into /etc"),
    ({"path": "{b}/log-link", "state": "absent"}, "path", "a link to /var/log", "a symlink to /var/log"),
    ({"path": "{b}/envs/lib-link"}, "path", "a link to /usr/lib", "a symlink to /usr/lib"),
    # malformed paths
    ({"path": "{b}/envs/a\0b"}, "path", "NUL byte", "NUL byte in path"),
    ({"path": "{b}/envs/a\n"}, "path", "line break", "trailing newline in path"),
    ({"path": "envs/a"}, "path", "absolute path", "relative path"),
    ({"path": ""}, "path", "empty", "empty path"),
    ({"path": "{b}/venv-other/sub"}, "path", "inside the Python environment", "inside another venv"),
    ({"path": "{b}/tools/venv"}, "path", "tool directory", "inside the tool dir"),
    ({"path": "{b}/tools", "state": "absent"}, "path", "tool directory", "remove the tool dir"),
    # tool_dir
    ({"tool_dir": "/etc"}, "tool_dir", "belongs to the system", "tool_dir /etc"),
    ({"tool_dir": "/usr/local/mlhost"}, "tool_dir", "belongs to the system", "tool_dir below /usr"),
    ({"tool_dir": "{b}/tools\0"}, "tool_dir", "NUL byte", "NUL in tool_dir"),
    ({"tool_dir": "tools"}, "tool_dir", "absolute path", "relative tool_dir"),
    # lock_file
    ({"lock_file": "/etc/passwd"}, "lock_file", "was not written by the collection", "lock over /etc/passwd"),
    ({"lock_file": "{b}/foreign.lock"}, "lock_file", "was not written by the collection", "lock over a foreign file"),
    ({"lock_file": "{b}/foreign-link.lock"}, "lock_file", "was not written by the collection", "lock over a symlink"),
    ({"lock_file": "env.lock"}, "lock_file", "absolute path", "relative lock_file"),
    ({"lock_file": "{b}/a.lock\0"}, "lock_file", "NUL byte", "NUL in lock_file"),
    ({"lock_file": "{b}/a.lock\n"}, "lock_file", "line break", "newline in lock_file"),
    ({"lock_file": "{b}/envs"}, "lock_file", "", "lock_file that is a directory"),
    ({"lock_file": "{b}/envs/a/pins.lock"}, "lock_file", "inside the environment", "lock inside the env"),
    ({"lock_file": "/etc/mlhost-train.lock"}, "lock_file", "belongs to the system", "new lock in /etc"),
    # packages
    ({"packages": ["numpy; rm -rf /"]}, "packages", "not a valid requirement", "shell text as a marker"),
    ({"packages": ["six\n"]}, "packages", "line break", "trailing newline in a package"),
    ({"packages": ["numpy==\uff15.\uff10"]}, "packages", "not ASCII", "fullwidth digits in a pin"),
    ({"packages": ["numpy==\u0661.\u0662"]}, "packages", "not ASCII", "Arabic-Indic digits in a pin"),
    ({"packages": ["six==1.0\0"]}, "packages", "NUL byte", "NUL in a package"),
    ({"packages": ["numpy>>1"]}, "packages", "not a valid requirement", "malformed specifier"),
    ({"packages": ["$(reboot)"]}, "packages", "not a valid requirement", "command substitution"),
    ({"packages": [f"--index-url https://user:{TOKEN}@pypi.example.internal/simple"]}, "packages", "is a pip option",
     "a pip option with a token as a package"),
    ({"packages": [f"six @ https://user:{TOKEN}@files.example.internal/six.whl ; rm -rf /"]}, "packages",
     "not a valid requirement", "a URL with a token and shell text"),
    ({"packages": [], "requirements": None}, "packages", "Nothing to install", "nothing requested"),
    # requirements and constraints files
    ({"requirements": "{b}/req-token.txt"}, "req-token.txt", "is an editable install (-e)", "an -e line with a token"),
    ({"requirements": "{b}/req-ftp-index.txt"}, "req-ftp-index.txt line 1", "ftp://", "an ftp --index-url line with a token"),
    ({"requirements": "{b}/req-cycle-a.txt"}, "req-cycle-b.txt", "in a cycle", "files that include each other"),
    ({"requirements": "{b}/req-hash-partial.txt", "packages": []}, "req-hash-partial.txt line 2", "has no --hash", "a half hash-locked file"),
    ({"requirements": "{b}/req-hash-partial.txt", "packages": ["attrs"]}, "packages", "hash-locked",
     "packages beside a hash lock"),
    ({"requirements": "{b}/req-pre.txt", "backend": "uv"}, "req-pre.txt line 1", "uv ignores --pre", "--pre in a file for uv"),
    ({"requirements": "{b}/req-env-var.txt"}, "req-env-var.txt line 1", "environment variable", "a ${VAR} in a file"),
    ({"requirements": "{b}/req-url-marker.txt"}, "req-url-marker.txt", "only --hash may follow", "a URL line with a token"),
    ({"requirements": "{b}/req-shell.txt"}, "req-shell.txt", "only --hash may follow", "shell text in a requirements file"),
    ({"requirements": "{b}/none.txt"}, "requirements", "does not exist", "missing requirements file"),
    ({"requirements": "req.txt"}, "requirements", "absolute path", "relative requirements"),
    ({"requirements": "{b}/reqdir"}, "requirements", "does not exist", "requirements that is a directory"),
    ({"requirements": "{b}/req-latin1.txt"}, "requirements", "UTF-8", "requirements not in UTF-8"),
    ({"requirements": "{b}/req\0.txt"}, "requirements", "NUL byte", "NUL in requirements"),
    ({"constraints": "{b}/none.txt"}, "constraints", "does not exist", "missing constraints file"),
    # torch
    ({"torch_cuda": "cu127"}, "torch_cuda", "cu118, cu121, cu124", "a tag PyTorch never published"),
    ({"torch_cuda": "cuda12"}, "torch_cuda", "is not valid", "malformed tag"),
    ({"torch_cuda": "cu124\n"}, "torch_cuda", "is not valid", "tag with a trailing newline"),
    ({"torch_cuda": "CU124"}, "torch_cuda", "is not valid", "upper-case tag"),
    ({"torch_cuda": "cu\uff11\uff12\uff14"}, "torch_cuda", "is not valid", "fullwidth digits in a tag"),
    ({"torch_index_url": "ftp://mirror.example.internal/whl"}, "torch_index_url", "ftp://", "ftp torch index"),
    ({"torch_index_url": f"ftp://user:{TOKEN}@mirror.example.internal/whl"}, "torch_index_url", "ftp://",
     "ftp torch index with a token"),
    ({"torch_index_url": "download.pytorch.org/whl"}, "torch_index_url", "no scheme", "torch index without scheme"),
    # index URLs and links
    ({"index_url": f"ftp://user:{TOKEN}@pypi.example.internal/simple"}, "index_url", "ftp://", "ftp index with a token"),
    ({"index_url": "https://[::1/simple"}, "index_url", "cannot be parsed", "malformed IPv6 host"),
    ({"index_url": "https://pypi.example.internal:port/simple"}, "index_url", "cannot be parsed", "port that is not a number"),
    ({"index_url": f"https://user:{TOKEN}@pypi.example.internal/simple\n"}, "index_url", "line break", "index with a newline"),
    ({"index_url": "https:///simple"}, "index_url", "names no host", "index without a host"),
    ({"extra_index_urls": ["javascript:alert(1)"]}, "extra_index_urls", "javascript://", "javascript: extra index"),
    ({"find_links": ["relative/wheels"]}, "find_links", "absolute directory", "relative find_links"),
    ({"find_links": ["{b}/no-wheels"]}, "find_links", "does not exist", "missing wheelhouse"),
    ({"find_links": ["ftp://host/wheels"]}, "find_links", "ftp://", "ftp find_links"),
    ({"find_links": ["{b}/wheelhouse\0"]}, "find_links", "NUL byte", "NUL in find_links"),
    ({"ca_bundle": "{b}/no-ca.pem"}, "ca_bundle", "does not exist", "missing CA bundle"),
    ({"ca_bundle": "{b}/reqdir"}, "ca_bundle", "does not exist", "CA bundle that is a directory"),
    ({"offline": True, "find_links": ["{b}/wheelhouse"], "index_url": "https://pypi.example.internal/simple"}, "index_url",
     "contradict", "offline with an index"),
    ({"offline": True, "find_links": ["{b}/wheelhouse"], "extra_index_urls": ["https://x.example.internal/simple"]},
     "extra_index_urls", "contradict", "offline with an extra index"),
    ({"offline": True}, "find_links", "needs find_links", "offline without a wheelhouse"),
    # mode, owner, group
    ({"mode": "0777"}, "mode", "world-writable", "world-writable env"),
    ({"mode": "0o755"}, "mode", "octal mode", "Python-style octal"),
    ({"mode": "0755\n"}, "mode", "octal mode", "mode with a trailing newline"),
    ({"mode": "\uff10\uff17\uff15\uff15"}, "mode", "octal mode", "fullwidth digits in mode"),
    ({"mode": "4755"}, "mode", "setuid", "setuid env"),
    ({"mode": "rwxr-xr-x"}, "mode", "octal mode", "symbolic mode"),
    ({"owner": "mlhost-no-such-user"}, "owner", "does not exist", "unknown owner"),
    ({"group": "mlhost-no-such-group"}, "group", "does not exist", "unknown group"),
    # what the collection did not create
    ({"path": "{b}/plain", "state": "absent"}, "path", "did not create", "remove an unowned directory"),
    ({"path": "{b}/plain"}, "path", "did not create", "rebuild over an unowned directory"),
    ({"path": "{b}/plainfile", "state": "absent"}, "path", "did not create", "remove an unowned file"),
    ({"path": "{b}/plainfile"}, "path", "did not create", "replace an unowned file"),
    ({"path": "{b}/plain-link", "state": "absent"}, "path", "did not create", "remove a symlink to an unowned directory"),
    ({"path": "{b}/plain-link"}, "path", "did not create", "replace a symlink to an unowned directory"),
    # interpreter paths
    ({"python": "/usr/bin/python3\0"}, "python", "NUL byte", "NUL in python"),
]


def test_there_are_at_least_fifty_cases():
    assert len(CASES) >= 50 and len({c[3] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("overrides, option, words, about", CASES, ids=[c[3] for c in CASES])
def test_bad_input_is_refused_by_the_plan(overrides, option, words, about, base):
    before = snapshot(base)
    runner = FakeRunner({})
    worker = _python_env.PythonEnv(make_host(params(base, **{k: fill(v, base) for k, v in overrides.items()}), runner, True),
                                   lambda: None)
    with pytest.raises(ModuleError) as err:
        worker.plan()
    msg = err.value.msg
    assert fill(option, base) in msg, msg
    assert words in msg, msg
    assert TOKEN not in msg and TOKEN not in json.dumps(err.value.details, default=str), msg
    assert runner.calls == []
    assert snapshot(base) == before


def test_a_token_in_a_requirement_line_is_masked_not_dropped(base):
    """The refusal still shows which line it is, with the user-info replaced."""
    with pytest.raises(ModuleError) as err:
        _python_env.check_options(params(base, requirements=str(base / "req-token.txt")))
    assert "line 2" in err.value.msg and "git+https://***@git.example.internal/repo.git" in err.value.msg


@pytest.mark.parametrize(
    "answer, words",
    [
        ((2, "", "Unknown option: -I\nusage: /usr/bin/python2 [option] ..."), "is Python 2: python_env needs Python 3.8+"),
        ((0, "3.6.15\n", ""), "is Python 3.6.15: python_env needs Python 3.8+"),
        ((0, "\uff13.11.2\n", ""), "python_env needs Python 3.8+"),
        ((1, "", "Segmentation fault"), "does not run as a Python interpreter"),
    ],
    ids=["python2", "python3.6", "unicode-version", "crashes"],
)
def test_an_interpreter_that_is_not_python_3_8_is_refused(base, answer, words):
    before = snapshot(base)
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", PROBE): answer})
    worker = _python_env.PythonEnv(make_host(params(base), runner, True), lambda: None)
    with pytest.raises(ModuleError) as err:
        worker.plan()
    assert "python '/usr/bin/python3'" in err.value.msg and words in err.value.msg, err.value.msg
    assert runner.calls == [["/usr/bin/python3", "-I", "-c", PROBE]]
    assert snapshot(base) == before


def test_a_missing_interpreter_is_refused_naming_the_option(base):
    runner = FakeRunner({})
    worker = _python_env.PythonEnv(make_host(params(base, python="python3.99"), runner, True), lambda: None)
    with pytest.raises(ModuleError, match=r"python: Python interpreter 'python3.99' was not found"):
        worker.plan()
    assert runner.calls == []


# --- what the collection made stays removable; what it did not, does not ------------------------------------


def test_an_unowned_venv_that_needs_a_change_is_refused_after_reading_it(base, monkeypatch):
    """A venv made by hand (pyvenv.cfg, no marker) is read; replacing it is refused, nothing else runs."""
    env = base / "envs" / "hand"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "bin" / "python").write_text("#!/bin/false\n")
    (env / "bin" / "python").chmod(0o755)
    before = snapshot(base)
    probe = json.dumps({"python": "3.11.2", "prefix": str(env), "packages": {"six": "1.16.0"}, "markers": {}})
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", PROBE): (0, "3.11.2\n", ""),
                         (str(env / "bin" / "python"), "-I", "-c", _venv.PROBE): (0, probe, "")})
    worker = _python_env.PythonEnv(make_host(params(base, path=str(env)), runner, True), lambda: None)
    with pytest.raises(ModuleError, match="did not create") as err:
        worker.plan()
    assert "path" in err.value.msg and _ownership.MARKER in err.value.msg
    assert len(runner.calls) == 2
    assert snapshot(base) == before


def test_an_unowned_venv_that_already_meets_the_request_is_left_alone(base):
    env = base / "envs" / "hand"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "bin" / "python").write_text("#!/bin/false\n")
    (env / "bin" / "python").chmod(0o755)
    probe = json.dumps({"python": "3.11.2", "prefix": str(env), "packages": {"six": "1.17.0"}, "markers": {}})
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", PROBE): (0, "3.11.2\n", ""),
                         (str(env / "bin" / "python"), "-I", "-c", _venv.PROBE): (0, probe, "")})
    plan = _python_env.PythonEnv(make_host(params(base, path=str(env)), runner, True), lambda: None).plan()
    assert plan.changed is False and plan.result["action"] == "none"


@pytest.mark.parametrize("legacy", [True, False], ids=["earlier-version-symlink", "marker"])
def test_an_env_the_collection_made_may_be_removed(base, legacy):
    gen = base / "envs" / ".a.mlhost-envs" / "g1"
    gen.mkdir(parents=True)
    if legacy:
        (gen / _venv.STATE_FILE).write_text("{}\n")
    else:
        _ownership.write_marker(str(gen), "mlinfra.mlhost.python_env")
    os.symlink(gen, base / "envs" / "a")
    worker = _python_env.PythonEnv(make_host(params(base, state="absent"), FakeRunner({})), lambda: None)
    plan = worker.plan()
    assert plan.changed is True and plan.result["action"] == "remove"
    worker.apply(plan)
    assert not os.path.lexists(base / "envs" / "a") and not gen.exists()


def test_a_symlink_into_some_other_generation_dir_is_not_owned(base):
    """mlhost-env.json alone does not make a directory ours: the link must lead into .<name>.mlhost-envs/."""
    other = base / "elsewhere"
    other.mkdir()
    (other / _venv.STATE_FILE).write_text("{}\n")
    os.symlink(other, base / "envs" / "a")
    with pytest.raises(ModuleError, match="did not create"):
        _python_env.check_options(params(base, state="absent"))


def test_swap_refuses_a_plain_directory_without_the_marker(base):
    gen = base / "envs" / ".plain.mlhost-envs" / "g1"
    gen.mkdir(parents=True)
    target = base / "plain"
    with pytest.raises(ModuleError, match="did not create"):
        _venv.swap(str(target), str(gen))
    assert (target / "data.csv").read_text() == "a,b\n1,2\n" and not target.is_symlink()


def test_swap_moves_an_adopted_plain_directory_aside(base):
    gen = base / "envs" / ".plain.mlhost-envs" / "g1"
    gen.mkdir(parents=True)
    target = base / "plain"
    _ownership.write_marker(str(target), "admin")
    previous = _venv.swap(str(target), str(gen))
    assert ".mlhost-replaced-" in previous and os.readlink(target) == str(gen)


def test_a_lock_file_of_an_earlier_version_may_be_rewritten(base):
    lock = base / "envs" / "a.lock"
    lock.write_text(f"# Exact pins of {base}/envs/a, written by mlinfra.mlhost.python_env.\nsix==1.16.0\n")
    assert _python_env.check_options(params(base, lock_file=str(lock)))["lock"] == str(lock)
