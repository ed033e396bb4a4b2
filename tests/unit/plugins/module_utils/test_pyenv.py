# SPDX-License-Identifier: GPL-3.0-or-later
"""pyenv shims resolved to the interpreter they would exec, without running them (issue 20, host_facts).

Fixture trees hold a pyenv root written the way pyenv writes it (the shim text is a copy of a real one, pyenv 2.6);
each case says what pyenv would exec, and the facts are checked against today's way (every shim probed)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _pyenv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRun, Link

# A real shim, as `pyenv rehash` (pyenv 2.6) wrote /root/.pyenv/shims/python3 on a workstation.
SHIM = """#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="/root/.pyenv"
SHIM_PATH=${0%/*}
if [[ $SHIM_PATH != "/root/.pyenv/shims" ]]; then
  export _PYENV_SHIM_PATH="$SHIM_PATH"
fi
exec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"
"""
# The shim of pyenv 2.3 (before _PYENV_SHIM_PATH): not the text the resolver knows, so it is probed.
OLD_SHIM = """#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="/root/.pyenv"
exec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"
"""
ELF = "\x7fELF fixture interpreter\n"
PATH = "/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/bin:/usr/bin:/bin"
SHIMS = ("python3", "python3.9", "python3.11", "python3.12")


def pyenv_tree(extra=None, drop=()):
    """A workstation: pyenv with 3.9.18, 3.11.7 (global) and 3.12.1, their shims, and Debian's python3.11."""
    files = {
        "root/.pyenv/libexec/pyenv": "#!/usr/bin/env bash\n",
        "root/.pyenv/bin/pyenv": Link("../libexec/pyenv"),
        "root/.pyenv/version": "3.11.7\n",
        "root/.pyenv/pyenv.d/exec/pip-rehash.bash": "# pip rehash\n",
        "root/.pyenv/plugins/pyenv-virtualenv/bin/pyenv-virtualenv": "#!/usr/bin/env bash\n",
        "root/.pyenv/plugins/pyenv-virtualenv/etc/pyenv.d/which/system-site-packages.bash": "# hook\n",
        "root/.pyenv/plugins/pyenv-virtualenv/shims/activate": "#!/bin/sh\n",
        "usr/bin/python3.11": ELF,
        "usr/bin/python3": Link("python3.11"),
        "bin": Link("usr/bin"),
        "home/u/proj/sub": None,
    }
    for version in ("3.9.18", "3.11.7", "3.12.1"):
        minor = version.rsplit(".", 1)[0]
        files[f"root/.pyenv/versions/{version}/bin/python{minor}"] = ELF
        files[f"root/.pyenv/versions/{version}/bin/python3"] = Link(f"python{minor}")
    for name in SHIMS:
        files[f"root/.pyenv/shims/{name}"] = SHIM
    files.update(extra or {})
    for name in drop:
        files.pop(name)
    return files


@pytest.fixture
def pyenv_root(tree):
    def make(extra=None, drop=()):
        path = tree(pyenv_tree(extra, drop))
        if (path / "root/.pyenv/libexec/pyenv").exists():
            os.chmod(path / "root/.pyenv/libexec/pyenv", 0o755)
        for name in SHIMS:
            if (path / f"root/.pyenv/shims/{name}").exists():
                os.chmod(path / f"root/.pyenv/shims/{name}", 0o755)
        return Sysroot(str(path))
    return make


def resolver(root, environ=None, pwd="/home/u/proj/sub", path=PATH):
    return _pyenv.ShimResolver(root, {"HOME": "/root", **(environ or {})}, pwd, path)


def where(root, environ=None, pwd="/home/u/proj/sub", path=PATH):
    """What each shim resolves to: the version it execs, 'system' (Debian's), None (no interpreter), 'probe'."""
    r = resolver(root, environ, pwd, path)
    out = {}
    for name in SHIMS:
        shim = f"/root/.pyenv/shims/{name}"
        target = r.resolve(shim)
        if target == shim:
            out[name] = "probe"
        elif target is None:
            out[name] = None
        elif target.startswith("/root/.pyenv/versions/"):
            assert target == f"/root/.pyenv/versions/{target.split('/')[4]}/bin/{name}"
            out[name] = target.split("/")[4]
        else:
            assert target == f"/usr/bin/{name}"
            out[name] = "system"
    return out


def test_the_shim_text_is_the_real_one():
    assert _pyenv._SHIM_RE.fullmatch(SHIM)
    assert _pyenv._SHIM_TEXT.replace("{root}", "/root/.pyenv").replace("{pyenv}", "/root/.pyenv/libexec/pyenv") == SHIM
    assert not _pyenv._SHIM_RE.fullmatch(OLD_SHIM)


# name: (environ, extra files, pwd) -> what python3, python3.9, python3.11, python3.12 exec
CASES = {
    "global version file": ({}, {}, "/home/u/proj/sub",
                            {"python3": "3.11.7", "python3.9": None, "python3.11": "3.11.7", "python3.12": None}),
    "PYENV_VERSION, two versions": ({"PYENV_VERSION": "3.12.1:3.9.18"}, {}, "/",
                                    {"python3": "3.12.1", "python3.9": "3.9.18", "python3.11": "system", "python3.12": "3.12.1"}),
    "PYENV_VERSION system": ({"PYENV_VERSION": "system"}, {}, "/",
                             {"python3": "system", "python3.9": None, "python3.11": "system", "python3.12": None}),
    "PYENV_VERSION empty reads the file": ({"PYENV_VERSION": ""}, {}, "/",
                                           {"python3": "3.11.7", "python3.9": None, "python3.11": "3.11.7", "python3.12": None}),
    "PYENV_VERSION python- prefix": ({"PYENV_VERSION": "python-3.12.1"}, {}, "/",
                                     {"python3": "3.12.1", "python3.9": None, "python3.11": "system", "python3.12": "3.12.1"}),
    "a missing version is passed over": ({"PYENV_VERSION": "3.7.99:3.9.18"}, {}, "/",
                                         {"python3": "3.9.18", "python3.9": "3.9.18", "python3.11": "system", "python3.12": None}),
    "only missing versions: the system": ({"PYENV_VERSION": "3.7.99"}, {}, "/",
                                          {"python3": "system", "python3.9": None, "python3.11": "system", "python3.12": None}),
    ".python-version in a parent, comments and lines": (
        {}, {"home/u/proj/.python-version": "# pinned\n\n  3.12.1 extra words\r\n3.9.18"}, "/home/u/proj/sub",
        {"python3": "3.12.1", "python3.9": "3.9.18", "python3.11": "system", "python3.12": "3.12.1"}),
    "an empty .python-version means the system, not the global file": (
        {}, {"home/u/proj/.python-version": ""}, "/home/u/proj/sub",
        {"python3": "system", "python3.9": None, "python3.11": "system", "python3.12": None}),
    "a .python-version of comments only means the system": (
        {}, {"home/u/.python-version": "# none\n"}, "/home/u/proj/sub",
        {"python3": "system", "python3.9": None, "python3.11": "system", "python3.12": None}),
    "system first, then a version": (
        {}, {"home/u/proj/sub/.python-version": "system\n3.9.18\n"}, "/home/u/proj/sub",
        {"python3": "system", "python3.9": "3.9.18", "python3.11": "system", "python3.12": None}),
    "a directory named .python-version is no version file": (
        {}, {"home/u/proj/sub/.python-version/x": "3.9.18\n"}, "/home/u/proj/sub",
        {"python3": "3.11.7", "python3.9": None, "python3.11": "3.11.7", "python3.12": None}),
    "PYENV_DIR is searched, then the working directory": (
        {"PYENV_DIR": "/home/u"}, {"home/u/proj/.python-version": "3.9.18\n"}, "/home/u/proj/sub",
        {"python3": "3.9.18", "python3.9": "3.9.18", "python3.11": "system", "python3.12": None}),
    "PYENV_VERSION wins over .python-version": (
        {"PYENV_VERSION": "3.12.1"}, {"home/u/proj/.python-version": "3.9.18\n"}, "/home/u/proj/sub",
        {"python3": "3.12.1", "python3.9": None, "python3.11": "system", "python3.12": "3.12.1"}),
    "no global version file: the system": (
        {}, {"root/.pyenv/version": ""}, "/",
        {"python3": "system", "python3.9": None, "python3.11": "system", "python3.12": None}),
    "a broken interpreter link is passed over, as pyenv's -x": (
        {"PYENV_VERSION": "3.12.1:3.11.7"}, {"root/.pyenv/versions/3.12.1/bin/python3": Link("python3.12-gone")}, "/",
        {"python3": "3.11.7", "python3.9": None, "python3.11": "3.11.7", "python3.12": "3.12.1"}),
    "a symlinked version directory is a version": (
        {"PYENV_VERSION": "3.12"}, {"root/.pyenv/versions/3.12": Link("3.12.1")}, "/",
        {"python3": "3.12", "python3.9": None, "python3.11": "system", "python3.12": "3.12"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_what_each_shim_execs(pyenv_root, name):
    environ, extra, pwd, expected = CASES[name]
    assert where(pyenv_root(extra), environ, pwd) == expected


def test_system_search_skips_the_shims_and_expands_tilde(pyenv_root):
    root = pyenv_root({"opt/py/bin/python3.12": ELF, "opt/py/bin/python3.9": ELF})
    r = _pyenv.ShimResolver(root, {"PYENV_VERSION": "system", "HOME": "/opt"}, "/", "/root/.pyenv/shims:~/py/bin:/usr/bin")
    assert r.resolve("/root/.pyenv/shims/python3.12") == "/opt/py/bin/python3.12"
    assert r.resolve("/root/.pyenv/shims/python3") == "/usr/bin/python3"


# name: (environ, extra files, files left out of the tree)
UNCERTAIN = {
    "a shim of another text": ({}, {"root/.pyenv/shims/python3": OLD_SHIM}, ()),
    "a shim that is not UTF-8": ({}, {"root/.pyenv/shims/python3": b"#!/bin/sh\n\xff\xfe\n"}, ()),
    "a version name with ..": ({"PYENV_VERSION": "../versions/3.9.18"}, {}, ()),
    "a version name with /": ({"PYENV_VERSION": "3.9.18/../3.12.1"}, {}, ()),
    "a version name of ..": ({"PYENV_VERSION": ".."}, {}, ()),
    "a file version of ..": ({}, {"root/.pyenv/version": "..\n"}, ()),
    "a file version with /": ({}, {"root/.pyenv/version": "3.11.7/../../../..\n"}, ()),
    "an empty field in PYENV_VERSION": ({"PYENV_VERSION": "3.11.7::3.9.18"}, {}, ()),
    "a glob in PYENV_VERSION": ({"PYENV_VERSION": "3.1*"}, {}, ()),
    "a space in PYENV_VERSION": ({"PYENV_VERSION": "3.11.7 3.9.18"}, {}, ()),
    "a prefix pyenv-latest resolves": ({"PYENV_VERSION": "3.12"}, {}, ()),
    "a pyenv-virtualenv environment": ({"PYENV_VERSION": "venv"},
                                       {"root/.pyenv/versions/venv/pyvenv.cfg": "home = /x\n", "root/.pyenv/versions/venv/bin/python3": ELF},
                                       ()),
    "a conda version": ({"PYENV_VERSION": "mf"}, {"root/.pyenv/versions/mf/conda-meta/history": ""}, ()),
    "an unknown hook": ({}, {"root/.pyenv/pyenv.d/which/mine.bash": "PYENV_COMMAND_PATH=/x\n"}, ()),
    "an unknown hook in /etc": ({}, {"etc/pyenv.d/exec/mine.bash": "true\n"}, ()),
    "an unknown hook on PYENV_HOOK_PATH": ({"PYENV_HOOK_PATH": "/srv/hooks"}, {"srv/hooks/version-name/x.bash": "\n"}, ()),
    "a relative hook path": ({"PYENV_HOOK_PATH": "hooks"}, {}, ()),
    "custom shim paths": ({"_PYENV_SHIM_PATHS_PYTHON3": "/opt/shims"}, {}, ()),
    "a global version file that is a directory": ({}, {"root/.pyenv/version/x": "3.9.18\n"}, ("root/.pyenv/version",)),
    "a version line over pyenv's read limit": ({}, {"root/.pyenv/version": "3" * 1500 + "\n"}, ()),
    "a NUL byte in the version file": ({}, {"root/.pyenv/version": "3.11.7\0\n"}, ()),
    "a relative PYENV_DIR": ({"PYENV_DIR": "proj"}, {}, ()),
    "a PYENV_DIR that is not there": ({"PYENV_DIR": "/nowhere"}, {}, ()),
    "a shim whose pyenv is no libexec/pyenv": ({}, {"root/.pyenv/libexec/pyenv": Link("../bin/other"),
                                                    "root/.pyenv/bin/other": "#!/bin/sh\n"}, ()),
    "a shim whose pyenv is gone": ({}, {}, ("root/.pyenv/libexec/pyenv", "root/.pyenv/bin/pyenv")),
}


@pytest.mark.parametrize("name", sorted(UNCERTAIN))
def test_uncertain_shims_are_probed_as_today(pyenv_root, name):
    environ, extra, drop = UNCERTAIN[name]
    assert where(pyenv_root(extra, drop), environ)["python3"] == "probe"


def test_uncertain_system_paths(pyenv_root):
    root = pyenv_root({"usr/local/bin/python3.12": "#!/bin/sh\nexec /somewhere/python3.12 \"$@\"\n"})
    os.chmod(root.path("usr/local/bin/python3.12"), 0o755)
    # The system's python3.12 is a script (another shim, a wrapper): probed. A relative PATH entry before a hit too.
    assert where(root, {"PYENV_VERSION": "system"})["python3.12"] == "probe"
    assert where(root, {"PYENV_VERSION": "system"}, path="bin:/usr/bin")["python3"] == "probe"
    assert where(root, {"PYENV_VERSION": "system"}, path="/usr/bin::/x")["python3"] == "system"  # found before ''


def test_a_shim_outside_its_shims_directory_is_probed(pyenv_root):
    root = pyenv_root({"usr/local/bin/python3": SHIM})
    os.chmod(root.path("usr/local/bin/python3"), 0o755)
    assert resolver(root).resolve("/usr/local/bin/python3") == "/usr/local/bin/python3"


def test_not_a_shim_is_itself(pyenv_root):
    root = pyenv_root()
    assert resolver(root).resolve("/usr/bin/python3") == "/usr/bin/python3"


def answers(root, environ, pwd, path):
    """The probe's answer for each interpreter, and for each shim the answer of the interpreter pyenv would exec (what
    running it gave): the FakeRun of today's way and of the new one."""
    def probe_out(target):
        real = root.realpath(target)
        version = {"python3.9": "3.9.18", "python3.11": "3.11.7" if "/versions/" in real else "3.11.2",
                   "python3.12": "3.12.1"}[os.path.basename(real)]
        return (0, json.dumps({"version": version, "executable": real, "externally_managed": real.startswith("/usr/")}) + "\n", "")

    responses = {}
    r = resolver(root, environ, pwd, path)
    for d in path.split(":"):
        for name in root.listdir(d):
            p = f"{d}/{name}"
            if not _pyenv._NAME_RE.fullmatch(name) or not root.is_executable(p):
                continue
            target = r.resolve(p)
            key = (p, "-I", "-S", "-c", _pyenv.PROBE)
            if target is None:
                responses[key] = (127, "", f"pyenv: {name}: command not found\n")
            elif target == p:
                responses[key] = probe_out(p)
            else:
                responses[key] = probe_out(target)
                responses[(target, "-I", "-S", "-c", _pyenv.PROBE)] = probe_out(target)
    return responses


@pytest.mark.parametrize("name", sorted(CASES))
def test_facts_are_todays(pyenv_root, monkeypatch, name):
    """The pythons list of every case, the new way against today's (each shim run), with fewer probes."""
    environ, extra, pwd, expected = CASES[name]
    root = pyenv_root(extra)
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    environ = {"HOME": "/root", **environ}
    responses = answers(root, environ, pwd, PATH)
    new_run, old_run = FakeRun(responses), FakeRun(responses)
    new = _pyenv.pythons(root, new_run, PATH, environ, pwd)
    monkeypatch.setattr(_pyenv.ShimResolver, "resolve", lambda self, path: path)
    old = _pyenv.pythons(root, old_run, PATH, environ, pwd)
    assert new == old
    assert len(new_run.calls) < len(old_run.calls)
    assert not [c for c in new_run.calls if c[0].startswith("/root/.pyenv/shims/")]
    assert len({root.realpath(c[0]) for c in new_run.calls}) == len(new_run.calls)  # each interpreter probed once


def test_the_workstation_facts(pyenv_root, monkeypatch):
    """The issue's workstation: global 3.11.7, nine-ish shims, Debian's 3.11: two probes instead of five."""
    root = pyenv_root()
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    environ = {"HOME": "/root"}
    run = FakeRun(answers(root, environ, "/", PATH))
    assert _pyenv.pythons(root, run, PATH, environ, "/") == [
        {"path": "/root/.pyenv/shims/python3", "version": "3.11.7", "externally_managed": False},
        {"path": "/usr/bin/python3", "version": "3.11.2", "externally_managed": True},
    ]
    assert [c[0] for c in run.calls] == ["/root/.pyenv/versions/3.11.7/bin/python3", "/usr/bin/python3"]


def test_a_broken_shim_link_is_no_candidate(pyenv_root, monkeypatch):
    root = pyenv_root({"root/.pyenv/shims/python3.13": Link("../gone")})
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    environ = {"HOME": "/root"}
    run = FakeRun(answers(root, environ, "/", PATH))
    assert [p["path"] for p in _pyenv.pythons(root, run, PATH, environ, "/")] == ["/root/.pyenv/shims/python3", "/usr/bin/python3"]


def test_an_image_tree_is_read_as_before(pyenv_root):
    """An offline sysroot runs nothing and reads shims by their names, as before."""
    root = pyenv_root()
    run = FakeRun()
    found = _pyenv.pythons(root, run, PATH, {"PYENV_VERSION": "3.12.1"}, "/")
    assert run.calls == []
    assert [(p["path"], p["version"]) for p in found] == [
        ("/usr/bin/python3", "3.11"),
    ]


def test_shell_pwd(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to("real")
    monkeypatch.chdir(real)
    assert _pyenv.shell_pwd({"PWD": str(tmp_path / "link")}) == str(tmp_path / "link")  # bash keeps a logical $PWD
    assert _pyenv.shell_pwd({"PWD": str(tmp_path)}) == str(real)  # a stale one is replaced
    assert _pyenv.shell_pwd({}) == str(real)


# Against pyenv itself, where this machine has it: every shim on PATH, run, against what the resolver names.
REAL_ROOT = pathlib.Path(os.environ.get("PYENV_ROOT") or pathlib.Path.home() / ".pyenv")


@pytest.mark.skipif(not (REAL_ROOT / "shims").is_dir() or not shutil.which("bash"), reason="no pyenv on this machine")
@pytest.mark.parametrize("environ", [{}, {"PYENV_VERSION": "system"}, {"PYENV_VERSION": "3.0.0:system"}])
def test_against_real_pyenv(environ, tmp_path):
    env = {**os.environ, **environ}
    if "PYENV_VERSION" not in environ:
        env.pop("PYENV_VERSION", None)
    path = env.get("PATH", "")
    r = _pyenv.ShimResolver(Sysroot("/"), env, str(tmp_path), path)
    compared = 0
    for name in sorted(os.listdir(REAL_ROOT / "shims")):
        shim = f"{REAL_ROOT}/shims/{name}"
        if not _pyenv._NAME_RE.fullmatch(name) or not os.access(shim, os.X_OK):
            continue
        target = r.resolve(shim)
        if target == shim:
            continue  # uncertain: probed as it is
        ran = subprocess.run([shim, "-I", "-S", "-c", "import sys; print(sys.executable)"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
        assert (ran.stdout.strip() if ran.returncode == 0 else None) == target, name
        compared += 1
