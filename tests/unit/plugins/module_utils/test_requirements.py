# SPDX-License-Identifier: GPL-3.0-or-later
"""Requirements against installed sets, the torch wheel choice, and the installer command lines."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _ownership, _requirements as rq, _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

MARKERS = {
    "implementation_name": "cpython", "implementation_version": "3.11.2", "os_name": "posix",
    "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "6.1.0",
    "platform_system": "Linux", "platform_version": "#1 SMP", "python_full_version": "3.11.2",
    "python_version": "3.11", "sys_platform": "linux",
}
INSTALLED = {"six": "1.16.0", "numpy": "1.26.4", "typing-extensions": "4.12.2", "torch": "2.5.1+cu124", "scikit-learn": "1.5.2"}


@pytest.mark.parametrize(
    "line, met",
    [
        ("six", True), ("six==1.16.0", True), ("six>=1.17", False), ("Six==1.16.*", True),
        ("numpy<2", True), ("numpy>=2", False), ("typing_extensions>=4", True), ("Typing.Extensions", True),
        ("scikit_learn~=1.5.0", True), ("torch==2.5.1", True), ("torch==2.5.1+cu124", True), ("torch==2.4.*", False),
        ("requests", False), ("requests ; python_version < '3.0'", True), ("six>=2 ; sys_platform == 'win32'", True),
        ("numpy[dev]<2", True), ("six @ https://example.invalid/six-1.16.0-py3-none-any.whl", True),
        ("pre-release-pkg>=1.0", False),
    ],
)
def test_satisfied(line, met):
    (req,) = rq.parse_lines([line], "test")
    assert rq.satisfied(req, INSTALLED, MARKERS) is met


@pytest.mark.parametrize(
    "line, message",
    [
        ("six=1.0", "not a valid requirement"),
        ("--index-url https://x", "is a pip option"),
        ("-r other.txt", "is a pip option"),
        ("numpy>=>2", "not a valid requirement"),
    ],
)
def test_bad_requirement_lines_name_the_line(line, message):
    with pytest.raises(rq.RequirementError) as err:
        rq.parse_lines(["six", line], "reqs.txt")
    assert message in str(err.value) and "reqs.txt line 2" in str(err.value)


def test_comments_and_blank_lines_are_skipped():
    reqs = rq.parse_lines(["# comment", "", "six  # trailing", "   "], "x")
    assert [r.name for r in reqs] == ["six"]


def test_diff_installed():
    before = {"six": "1.16.0", "packaging": "24.2", "idna": "3.10", "numpy": "2.1.0"}
    after = {"six": "1.17.0", "attrs": "24.2.0", "numpy": "1.26.4"}
    assert rq.diff_installed(before, after) == {
        "added": {"attrs": "24.2.0"},
        "removed": {"idna": "3.10", "packaging": "24.2"},
        "upgraded": {"six": {"from": "1.16.0", "to": "1.17.0"}},
        "downgraded": {"numpy": {"from": "2.1.0", "to": "1.26.4"}},
    }


def test_lock_text_is_sorted_exact_pins():
    text = rq.lock_text({"six": "1.17.0", "attrs": "24.2.0"}, "header\nmore")
    assert text == "# Written by mlinfra.mlhost header\n# more\nattrs==24.2.0\nsix==1.17.0\n"
    assert text.startswith(_ownership.TEXT_MARKER)


@pytest.mark.parametrize("first, ours", [
    ("# Exact pins of /opt/envs/train, written by mlinfra.mlhost.python_env.\n", True),
    ("# Exact pins of /opt/envs/train, written by mlinfra.mlhost.python_env.", True),
    ("# Exact pins of /opt/envs/train, written by someone else.\n", False),
    ("root:x:0:0:root:/root:/bin/bash\n", False),
    ("# Exact pins of relative, written by mlinfra.mlhost.python_env.\n", False),
])
def test_lock_files_of_earlier_versions_are_recognised(first, ours):
    assert rq.is_legacy_lock(first) is ours


@pytest.mark.parametrize(
    "torch, cuda, tag",
    [
        ("2.5.1", "13.0", "cu124"), ("2.5.1", "12.2", "cu121"), ("2.5.1", "11.8", "cu118"), ("2.5.1", "11.4", "cpu"),
        ("2.7.0", "12.8", "cu128"), ("2.7.0", "12.4", "cu118"), ("2.9.0", "13.0", "cu130"), ("2.8.0", "12.4", "cpu"),
        ("2.4.1", None, "cpu"), ("2.0.1", "12.2", "cu118"),
    ],
)
def test_torch_cuda_tag(torch, cuda, tag):
    assert _compat.torch_cuda_tag(torch, cuda) == tag


def test_unknown_torch_release_is_an_error_not_a_guess():
    with pytest.raises(ValueError) as err:
        _compat.torch_cuda_tag("2.14.1", "13.0")
    assert "No CUDA wheel data for torch 2.14" in str(err.value) and "torch_cuda" in str(err.value)


def test_tag_cuda():
    assert [_compat.tag_cuda(t) for t in ("cu118", "cu124", "cu130")] == ["11.8", "12.4", "13.0"]
    with pytest.raises(ValueError):
        _compat.tag_cuda("rocm6.2")


def test_uv_commands():
    assert _venv.venv_command("uv", "/usr/bin/python3", "/opt/envs/.e.mlhost-envs/g1", "/opt/t/uv") == [
        "/opt/t/uv", "venv", "--no-config", "--python", "/usr/bin/python3", "/opt/envs/.e.mlhost-envs/g1"]
    argv = _venv.install_command("uv", "/g", "/g/req.txt", "/etc/c.txt", ["/srv/wh"], True, "/opt/t/uv")
    assert argv == ["/opt/t/uv", "pip", "install", "--no-config", "--python", "/g/bin/python", "-r", "/g/req.txt",
                    "-c", "/etc/c.txt", "--find-links", "/srv/wh", "--no-index"]


def test_pip_commands():
    assert _venv.venv_command("pip", "/usr/bin/python3.11", "/g") == ["/usr/bin/python3.11", "-m", "venv", "/g"]
    assert _venv.install_command("pip", "/g", "/g/req.txt", None, [], False) == [
        "/g/bin/python", "-m", "pip", "install", "--no-warn-script-location", "-r", "/g/req.txt"]


def test_index_urls_travel_in_the_environment_never_in_argv():
    token_url = "https://user:s3cret@pypi.example.internal/simple"
    env = _venv.installer_env("pip", token_url, ["https://download.pytorch.org/whl/cu124"], "/etc/ssl/certs/ca-certificates.crt")
    assert env["PIP_INDEX_URL"] == token_url and env["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cu124"
    assert env["PIP_CERT"] == env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    uv = _venv.installer_env("uv", token_url, [], None)
    assert uv["UV_DEFAULT_INDEX"] == token_url and uv["UV_PYTHON_DOWNLOADS"] == "never"
    argv = _venv.install_command("uv", "/g", "/g/r.txt", None, [], False, "/t/uv")
    assert not any("s3cret" in a for a in argv)


@pytest.mark.parametrize(
    "path, ok",
    [
        ("/opt/envs/torch", True), ("/home/alice/envs/a", True), ("/srv/ml/env", True),
        ("/usr", False), ("/usr/local", False), ("/", False), ("/opt", False), ("/etc/env", False),
        ("relative/env", False), ("", False), ("/var/lib/env", False), ("/tmp", False),
        ("/var/log", False), ("/var/spool", False), ("/home/alice", False),
    ],
)
def test_env_paths_go_through_the_ownership_rules(path, ok):
    if ok:
        assert _ownership.check_target(path, "path", "/opt/envs/<name>") == path
    else:
        with pytest.raises(ModuleError):
            _ownership.check_target(path, "path", "/opt/envs/<name>")


def test_failing_requirement_found_in_uv_output():
    out = ("error: No solution found when resolving dependencies:\n  Because mlhost-no-such-package-xyz was not found "
           "in the package registry and you require mlhost-no-such-package-xyz, we can conclude ...")
    assert _venv.failing_requirement(out, ["six", "mlhost-no-such-package-xyz", "attrs"]) == ["mlhost-no-such-package-xyz"]


def test_clear_world_writable(tmp_path):
    (tmp_path / "env" / "bin").mkdir(parents=True)
    lock = tmp_path / "env" / ".lock"
    lock.write_text("")
    lock.chmod(0o666)
    (tmp_path / "env" / "bin").chmod(0o777)
    (tmp_path / "env" / "bin" / "python").symlink_to("/usr/bin/python3")
    fixed = _venv.clear_world_writable(str(tmp_path / "env"))
    assert sorted(fixed) == sorted([str(lock), str(tmp_path / "env" / "bin")])
    assert oct(lock.stat().st_mode & 0o777) == "0o664"
    assert oct((tmp_path / "env" / "bin").stat().st_mode & 0o777) == "0o775"
