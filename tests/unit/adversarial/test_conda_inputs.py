# SPDX-License-Identifier: GPL-3.0-or-later
"""Adversarial input for miniforge and conda_env (issue 14): every bad value refused in the plan.

Each case runs the module's real main() (argument spec, the one entry, the worker's plan) against a
fixture tree under tmp_path with the command door and the downloader closed: any command or download
fails the test. Each case must exit 1 with a message that names the option (or, for a file's content,
the part of the file) and says what is wrong, without a traceback or ansible-core's bare
``Module failed:``; the tree (and /etc/passwd) must be byte for byte as before; no secret given in any
option or file may appear anywhere in the result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pathlib
import shutil

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _module, _run
from mlhost_testlib import FIXTURES

SECRET = "s3cr3tTOKEN"
HEX = "a" * 64


@pytest.fixture
def bed(tmp_path, monkeypatch):
    """A tree with what the collection did not make: a conda base, an env, an admin's directory and lock file."""
    b = tmp_path / "srv"
    (b / "mf" / "conda-meta").mkdir(parents=True)
    (b / "mf" / "conda-meta" / "conda-24.11.3-py_0.json").write_text(json.dumps({"name": "conda", "version": "24.11.3"}))
    (b / "mf" / "bin").mkdir()
    (b / "mf" / "bin" / "conda").write_text("#!/bin/sh\nexit 99\n")
    (b / "mf" / "bin" / "conda").chmod(0o755)
    (b / "mf" / "envs").mkdir()
    (b / "mf" / ".condarc").write_text("channels:\n  - my-own\n")
    shutil.copytree(FIXTURES / "conda" / "env-greet10", b / "envs" / "foreign")
    (b / "admin-data").mkdir()
    (b / "admin-data" / "data.txt").write_text("keep me\n")
    (b / "admin.lock").write_text("# mine\n")
    (b / "inst.sh").write_text("#!/bin/sh\nexit 1\n")
    (b / "pip-secret.yml").write_text(
        f"dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - --index-url https://user:{SECRET}@pypi.example/simple\n    - six\n"
        f"    - -e git+https://user:{SECRET}@git.example/org/tool.git#egg=tool\n")
    (b / "bad-channel.yml").write_text("channels: ['javascript:alert(1)']\ndependencies:\n  - python=3.11\n")
    (b / "bad-name.yml").write_text("name: ../escape\ndependencies:\n  - python=3.11\n")
    os.symlink("/etc", b / "link-to-etc")
    os.symlink(b / "mf" / "envs", b / "link-to-envs")
    calls: list = []

    def closed(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a command or download ran for bad input: {args}")

    monkeypatch.setattr(_run.Runner, "run", closed)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", closed)
    monkeypatch.setattr(_module.Host, "fetch", closed)
    return b, calls


def snapshot(top: pathlib.Path) -> dict[str, str]:
    out = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        kind = "l" if path.is_symlink() else ("d" if path.is_dir() else "f")
        body = os.readlink(path) if kind == "l" else (hashlib.sha256(path.read_bytes()).hexdigest() if kind == "f" else "")
        out[str(path.relative_to(top))] = f"{kind} {oct(st.st_mode)} {st.st_mtime_ns} {body}"
    out["/etc/passwd"] = hashlib.sha256(pathlib.Path("/etc/passwd").read_bytes()).hexdigest()
    return out


def fill(value, base):
    if isinstance(value, str):
        return value.replace("{b}", str(base))
    if isinstance(value, list):
        return [fill(v, base) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, base) for k, v in value.items()}
    return value


MF = {"prefix": "{b}/new-mf", "installer": "{b}/inst.sh", "sha256": HEX}
ENV = {"prefix": "{b}/envs/new", "specs": ["python=3.11"], "channels": ["conda-forge"], "engine": "rattler",
       "conda": "{b}/mf", "tool_dir": "{b}/tools"}

# (module, overrides of the base args (None removes), the word naming the option, the words saying what is wrong)
CASES = [
    # --- miniforge: prefix ---------------------------------------------------------------
    ("miniforge", {"prefix": "miniforge3"}, "prefix", "absolute path"),
    ("miniforge", {"prefix": "/var/spool"}, "prefix", "system directory"),
    ("miniforge", {"prefix": "/var/log"}, "prefix", "system directory"),
    ("miniforge", {"prefix": "/usr/local/miniforge3"}, "prefix", "belongs to the system"),
    ("miniforge", {"prefix": "/"}, "prefix", "root directory"),
    ("miniforge", {"prefix": "/opt"}, "prefix", "system directory"),
    ("miniforge", {"prefix": "{b}/link-to-etc/mf"}, "prefix", "a link to /etc"),
    ("miniforge", {"prefix": "{b}/mf/envs"}, "prefix", "envs directory of the conda installation"),
    ("miniforge", {"prefix": "{b}/envs/foreign/sub"}, "prefix", "inside the conda environment"),
    ("miniforge", {"prefix": "{b}/mf\x00x"}, "prefix", "NUL byte"),
    ("miniforge", {"prefix": "{b}/mf2\n"}, "prefix", "line break"),
    ("miniforge", {"prefix": "{b}/admin-data"}, "prefix", "not a conda installation"),
    ("miniforge", {"prefix": "{b}/admin-data", "state": "absent"}, "prefix", "not a conda installation"),
    ("miniforge", {"prefix": "{b}/mf", "state": "absent"}, "prefix", "the collection did not create"),
    ("miniforge", {"prefix": "{b}/mf"}, "prefix", "will not be overwritten"),
    # --- miniforge: installer and its checksum ------------------------------------------------
    ("miniforge", {"installer": "javascript:alert(1)"}, "installer", "absolute path on the host"),
    ("miniforge", {"installer": "ftp://mirror.example/Miniforge3.sh"}, "installer", "is not an http://"),
    ("miniforge", {"installer": "https://[::1/Miniforge3.sh"}, "installer", "not a valid URL"),
    ("miniforge", {"installer": f"https://user:{SECRET}@[::1/Miniforge3.sh"}, "installer", "not a valid URL"),
    ("miniforge", {"installer": f"https://user:{SECRET}@mirror.example/Miniforge3.sh", "sha256": None}, "sha256", "sha256 is not set"),
    ("miniforge", {"installer": f"https://mirror.example/Miniforge3.sh?X-Amz-Signature={SECRET}", "sha256": None}, "sha256",
     "sha256 is not set"),
    ("miniforge", {"installer": "https:///Miniforge3.sh"}, "installer", "has no host"),
    ("miniforge", {"installer": "inst.sh"}, "installer", "absolute path"),
    ("miniforge", {"installer": "{b}/no-such-installer.sh"}, "installer", "does not exist on the host"),
    ("miniforge", {"sha256": "abc"}, "sha256", "not a SHA-256 hex digest"),
    ("miniforge", {"sha256": "g" * 64}, "sha256", "not a SHA-256 hex digest"),
    ("miniforge", {"sha256": HEX + "\n"}, "sha256", "line break"),
    ("miniforge", {"sha256": "0" * 64}, "sha256", "it was not run"),
    # --- miniforge: version, channels, mirrors, proxies -------------------------------------
    ("miniforge", {"version": "latest"}, "version", "25.3.1-0"),
    ("miniforge", {"version": "\uff15\uff13.\uff11"}, "version", "is not a version"),
    ("miniforge", {"version": "24.11.3\n"}, "version", "line break"),
    ("miniforge", {"channels": ["javascript:alert(1)"]}, "channels", "is not a channel name"),
    ("miniforge", {"channels": ["defaults"]}, "channels", "terms of service"),
    ("miniforge", {"channels": []}, "channels", "is empty"),
    ("miniforge", {"channels": ["https://[::1/conda"]}, "channels", "not a valid URL"),
    ("miniforge", {"channels": ["file://relative/conda"]}, "channels", "absolute path"),
    ("miniforge", {"channels": ["conda-forge/../../etc"]}, "channels", "is not a channel name"),
    ("miniforge", {"channel_alias": "mirror.example"}, "channel_alias", "is not an http://"),
    ("miniforge", {"custom_channels": {"conda-forge": "ftp://mirror.example/conda"}}, "custom_channels", "is not an http://"),
    ("miniforge", {"custom_channels": {"bad name!": "https://mirror.example/conda"}}, "custom_channels", "not a channel name"),
    ("miniforge", {"proxy_servers": {"https": f"not a url {SECRET}"}}, "proxy_servers", "proxy URL"),
    ("miniforge", {"proxy_servers": {"ftp": "http://proxy.example:3128"}}, "proxy_servers", "the keys http and https"),
    ("miniforge", {"proxy_servers": {"https": f"http://user:{SECRET}@[::1:3128"}}, "proxy_servers", "proxy URL"),
    ("miniforge", {"ssl_verify": "maybe"}, "ssl_verify", "must be auto, true, false"),
    ("miniforge", {"ssl_verify": "{b}/no-bundle.pem"}, "ssl_verify", "must be auto, true, false"),
    # --- miniforge: ownership, mode, timeout ------------------------------------------------
    ("miniforge", {"mode": "0777"}, "mode", "world-writable"),
    ("miniforge", {"mode": "u+rwx"}, "mode", "not an octal mode"),
    ("miniforge", {"mode": "0755\n"}, "mode", "line break"),
    ("miniforge", {"owner": "no-such-user-mlhost"}, "owner", "does not exist on the host"),
    ("miniforge", {"owner": "root\x00"}, "owner", "NUL byte"),
    ("miniforge", {"group": "no-such-group-mlhost"}, "group", "does not exist on the host"),
    ("miniforge", {"timeout": 0}, "timeout", "at least 1"),
    ("miniforge", {"timeout": -1}, "timeout", "at least 1"),
    # --- conda_env: name and prefix ------------------------------------------------------------
    ("conda_env", {"prefix": None, "name": "../x"}, "name", "not a plain name"),
    ("conda_env", {"prefix": None, "name": "a/b"}, "name", "not a plain name"),
    ("conda_env", {"prefix": None, "name": "train\n"}, "name", "line break"),
    ("conda_env", {"prefix": None, "name": "base"}, "name", "not a plain name"),
    ("conda_env", {"prefix": None, "name": "tr ain"}, "name", "not a plain name"),
    ("conda_env", {"prefix": None, "name": "x" * 200}, "name", "not a plain name"),
    ("conda_env", {"prefix": None, "name": "t\x00"}, "name", "NUL byte"),
    ("conda_env", {"prefix": None, "name": "train", "conda": "{b}/no-base"}, "name", "does not exist"),
    ("conda_env", {"prefix": "/var/spool"}, "prefix", "system directory"),
    ("conda_env", {"prefix": "/usr"}, "prefix", "belongs to the system"),
    ("conda_env", {"prefix": "{b}/mf/envs"}, "prefix", "envs directory of the conda installation"),
    ("conda_env", {"prefix": "{b}/envs/foreign/inner"}, "prefix", "inside the conda environment"),
    ("conda_env", {"prefix": "{b}/link-to-envs"}, "prefix", "a link to"),
    ("conda_env", {"prefix": "{b}/mf"}, "prefix", "the conda base itself"),
    ("conda_env", {"prefix": "{b}/tools/conda-venv"}, "prefix", "tool directory"),
    ("conda_env", {"prefix": "{b}/admin-data"}, "prefix", "the collection did not create"),
    ("conda_env", {"prefix": "{b}/admin-data", "state": "absent"}, "prefix", "not a conda environment"),
    ("conda_env", {"prefix": "{b}/envs/foreign", "state": "absent"}, "prefix", "the collection did not create"),
    ("conda_env", {"prefix": "{b}/envs/foreign", "specs": ["mlhost-greet=1.1"]}, "prefix", "the collection did not create"),
    ("conda_env", {"prefix": "envs/train"}, "prefix", "absolute path"),
    ("conda_env", {"prefix": "{b}/e\x00"}, "prefix", "NUL byte"),
    # --- conda_env: lock_file, tool_dir, conda -----------------------------------------------
    ("conda_env", {"lock_file": "/etc/passwd"}, "lock_file", "belongs to the system"),
    ("conda_env", {"lock_file": "{b}/admin.lock"}, "lock_file", "was not written by the collection"),
    ("conda_env", {"lock_file": "relative.lock"}, "lock_file", "absolute path"),
    ("conda_env", {"lock_file": "{b}/envs"}, "lock_file", "is a directory"),
    ("conda_env", {"lock_file": "{b}/envs/new/train.lock"}, "lock_file", "inside the environment"),
    ("conda_env", {"lock_file": "{b}/link-to-etc/x.lock"}, "lock_file", "a link to /etc"),
    ("conda_env", {"tool_dir": "/etc"}, "tool_dir", "belongs to the system"),
    ("conda_env", {"tool_dir": "tools"}, "tool_dir", "absolute path"),
    ("conda_env", {"prefix": None, "name": "train", "conda": "relative/base"}, "conda", "absolute path"),
    # --- conda_env: channels, indexes, CA, timeout -----------------------------------------
    ("conda_env", {"channels": ["javascript:alert(1)"]}, "channels", "is not a channel name"),
    ("conda_env", {"channels": ["defaults"]}, "channels", "terms of service"),
    ("conda_env", {"channels": ["ftp://mirror.example/conda"]}, "channels", "is not an http://"),
    ("conda_env", {"channels": ["https://[::1/conda"]}, "channels", "not a valid URL"),
    ("conda_env", {"channels": [f"https://user:{SECRET}@[::1/conda"]}, "channels", "not a valid URL"),
    ("conda_env", {"channels": [f"https://conda.anaconda.org/t/{SECRET}/anaconda"]}, "channels", "terms of service"),
    ("conda_env", {"index_url": "ftp://pypi.example/simple"}, "index_url", "is not an http://"),
    ("conda_env", {"index_url": f"https://user:{SECRET}@[::1/simple"}, "index_url", "not a valid URL"),
    ("conda_env", {"find_links": ["relative/wheels"]}, "find_links", "absolute path"),
    ("conda_env", {"find_links": ["ftp://wheels.example/"]}, "find_links", "is not an http://"),
    ("conda_env", {"ca_bundle": "{b}/no-such-ca.pem"}, "ca_bundle", "is not a file on the host"),
    ("conda_env", {"timeout": 0}, "timeout", "at least 1"),
    ("conda_env", {"timeout": -5}, "timeout", "at least 1"),
    # --- conda_env: specs and the environment file ---------------------------------------------
    ("conda_env", {"specs": ["numpy >=<1"]}, "specs", "is not valid"),
    ("conda_env", {"specs": ["numpy", "numpy >=1"]}, "specs", "requested more than once"),
    ("conda_env", {"specs": []}, "specs", "Nothing to install"),
    ("conda_env", {"file": "environment.yml"}, "file", "absolute path"),
    ("conda_env", {"file": "{b}/no-such-environment.yml"}, "file", "does not exist on the host"),
    ("conda_env", {"file": "{b}/pip-secret.yml", "specs": []}, "pip subsection", "is an editable install"),
    ("conda_env", {"file": "{b}/bad-channel.yml", "specs": [], "channels": []}, "the file's channels", "is not a channel name"),
    ("conda_env", {"file": "{b}/bad-name.yml", "specs": [], "prefix": None}, "the file's name:", "not a plain name"),
]


def _args(module: str, overrides: dict, base: pathlib.Path) -> dict:
    args = dict(MF if module == "miniforge" else ENV)
    for key, value in overrides.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return fill(args, base)


def test_there_are_enough_cases():
    assert sum(1 for c in CASES if c[0] == "miniforge") >= 45
    assert sum(1 for c in CASES if c[0] == "conda_env") >= 45


@pytest.mark.parametrize("module, overrides, option, words", CASES, ids=[f"{c[0]}-{i}-{c[2]}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_in_the_plan(module, overrides, option, words, bed, capsys):
    base, calls = bed
    before = snapshot(base.parent)
    main = importlib.import_module(f"ansible_collections.mlinfra.mlhost.plugins.modules.{module}").main
    with patch_module_args(_args(module, overrides, base)):
        with pytest.raises(SystemExit) as exit_info:
            main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exit_info.value.code == 1 and result.get("failed") is True, result
    msg = result["msg"]
    # ansible-core 2.21 refuses a NUL byte in any argument itself, before the module's code runs (it cannot log the
    # invocation to syslog): refused before any change too, but in its words, which name no option.
    if not ("Failed to log to syslog (embedded null character)" in msg and "\\x00" in repr(overrides)):
        assert option in msg, msg
        assert words in msg, msg
    assert "Traceback" not in out and "Module failed" not in msg and "Internal error" not in msg, msg
    assert SECRET not in out
    assert calls == []
    assert snapshot(base.parent) == before
