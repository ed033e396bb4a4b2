# SPDX-License-Identifier: GPL-3.0-or-later
"""Requirements against installed sets, the torch wheel choice, and the installer command lines."""

from __future__ import annotations

import os

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


# --- requirements files as pip reads them (shaped like the files ML projects ship) -----------------------------------

H1, H2, H3 = "a" * 64, "0123456789abcdef" * 4, "f" * 64
# The shape of `uv pip compile --generate-hashes` / `pip-compile --generate-hashes` output (JAX's lock is one).
HASH_LOCK = f"""#
# This file is autogenerated by pip-compile with Python 3.11
# by the following command:
#
#    pip-compile --generate-hashes requirements.in
#
idna==3.10 \\
    --hash=sha256:{H1} \\
    --hash=sha256:{H2}
    # via requests
six==1.16.0 \\
    --hash=sha256:{H3}
    # via -r requirements.in
"""


def write(path, text, mode="w"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_an_include_and_a_constraints_file_are_read_relative_to_the_including_file(tmp_path, monkeypatch):
    """vLLM's requirements/cuda.txt: -r common.txt beside it; Ray's: -c a constraints file."""
    write(tmp_path / "reqs" / "common.txt", "six>=1.16  # common to every platform\n-c ../pins/constraints.txt\n")
    write(tmp_path / "pins" / "constraints.txt", "urllib3<2\n")
    top = write(tmp_path / "reqs" / "cuda.txt", "# CUDA build\n-r common.txt\nidna==3.10 ; platform_system == 'Linux'\n")
    monkeypatch.chdir("/")
    request = rq.read_requirements_file(top)
    assert [(line.text, line.kind, os.path.basename(line.source), line.number) for line in request.lines] == [
        ("six>=1.16", "requirement", "common.txt", 1),
        ("urllib3<2", "constraint", "constraints.txt", 1),
        ("idna==3.10 ; platform_system == 'Linux'", "requirement", "cuda.txt", 3),
    ]
    assert len(request.files) == 3 and not request.hash_mode


def test_a_hash_lock_with_continuations_is_read_in_hash_mode():
    lines = rq.logical_lines(HASH_LOCK)
    assert [pair[0] for pair in lines] == [7, 11]


def test_a_hash_lock_file(tmp_path):
    request = rq.read_requirements_file(write(tmp_path / "lock.txt", HASH_LOCK))
    assert [(line.text, line.hashes) for line in request.lines] == [
        ("idna==3.10", (f"sha256:{H2}", f"sha256:{H1}")), ("six==1.16.0", (f"sha256:{H3}",))]
    assert request.hash_mode


def test_a_bom_and_crlf_file_from_a_windows_editor(tmp_path):
    path = write(tmp_path / "win.txt", "\ufeffsix==1.16.0\r\nidna==3.10 \\\r\n    --hash=sha256:{}\r\n".format(H1).encode("utf-8"), "wb")
    request = rq.read_requirements_file(path)
    assert [(line.text, line.hashes) for line in request.lines] == [("six==1.16.0", ()), ("idna==3.10", (f"sha256:{H1}",))]
    utf16 = write(tmp_path / "utf16.txt", "six==1.16.0\r\n".encode("utf-16"), "wb")
    assert [line.text for line in rq.read_requirements_file(utf16).lines] == ["six==1.16.0"]


def test_in_file_index_and_find_links_options(tmp_path):
    (tmp_path / "wheels").mkdir()
    path = write(tmp_path / "r.txt", "--index-url https://user:s3cr3t@pypi.example.internal/simple\n"
                 "--extra-index-url=https://download.pytorch.org/whl/cpu\n-f wheels\n--no-index\nsix\n")
    options = rq.read_requirements_file(path).options
    assert options["index_url"] == "https://user:s3cr3t@pypi.example.internal/simple"
    assert options["extra_index_urls"] == ["https://download.pytorch.org/whl/cpu"]
    assert options["find_links"] == [str(tmp_path / "wheels")] and options["no_index"] is True


@pytest.mark.parametrize(
    "text, words",
    [
        ("-e ./myproject\n", "is an editable install (-e)"),
        ("--editable=git+https://u:s3cr3t@git.example.internal/x.git\n", "is an editable install (-e)"),
        ("-r https://raw.example.internal/req.txt\n", "includes a file by URL"),
        ("six --global-option=--no-user-cfg\n", "only --hash may follow"),
        ("--use-feature=truststore\n", "does not read in a requirements file"),
        ("six --hash=md5:abc\n", "--hash that is not"),
        ("--extra-index-url https://${TOKEN}@pypi.example.internal/simple\n", "environment variable"),
        ("-r missing.txt\n", "cannot be read"),
        ("-r\n", "with no value"),
    ],
)
def test_what_is_not_read_is_refused_naming_the_file_and_line(tmp_path, text, words):
    path = write(tmp_path / "r.txt", "six\n" + text)
    with pytest.raises(rq.RequirementError) as err:
        rq.read_requirements_file(path)
    assert words in err.value.msg and "s3cr3t" not in err.value.msg, err.value.msg
    assert "r.txt" in err.value.msg


def test_includes_in_a_cycle_and_too_deep_are_refused(tmp_path):
    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "-c a.txt\n")
    with pytest.raises(rq.RequirementError, match="in a cycle"):
        rq.read_requirements_file(str(tmp_path / "a.txt"))
    for n in range(rq.MAX_INCLUDE_DEPTH + 1):
        write(tmp_path / f"d{n}.txt", f"-r d{n + 1}.txt\n")
    write(tmp_path / f"d{rq.MAX_INCLUDE_DEPTH + 1}.txt", "six\n")
    with pytest.raises(rq.RequirementError, match="deep"):
        rq.read_requirements_file(str(tmp_path / "d0.txt"))


@pytest.mark.parametrize("line", ["./dist/six-1.16.0-py2.py3-none-any.whl", "/srv/six-1.16.0-py2.py3-none-any.whl",
                                  "https://files.example.internal/six.whl"])
def test_a_bare_path_or_url_is_refused_naming_the_form_to_use(line):
    with pytest.raises(rq.RequirementError, match="name @ file:///"):
        rq.check_line_syntax(line, 3, "r.txt")


def test_fingerprint_counts_a_credential_without_storing_it():
    one = {"index_url": "https://user:s3cr3t@pypi.example.internal/simple", "lines": ["six"]}
    two = dict(one, index_url="https://user:other@pypi.example.internal/simple")
    assert rq.fingerprint(one, "00") == rq.fingerprint(one, "00")
    assert rq.fingerprint(one, "00") != rq.fingerprint(two, "00")
    assert rq.fingerprint(one, "00") != rq.fingerprint(one, "11")  # salted: no table of precomputed tokens helps
    assert rq.fingerprint({"lines": ["six"]}, "00") == rq.fingerprint({"lines": ["six"]}, "11")  # no secret, no salt


@pytest.mark.parametrize(
    "line, version, way",
    [("joblib==1.4.2", "1.5.1", "downgraded"), ("joblib==1.6.0", "1.5.1", "upgraded"), ("joblib<1.5", "1.5.1", "downgraded"),
     ("joblib~=1.4.0", "1.5.1", "downgraded"), ("joblib>=1.6", "1.5.1", "upgraded"), ("joblib!=1.5.1", "1.5.1", "upgraded"),
     ("joblib==1.4.*", "1.5.1", "downgraded")],
)
def test_direction(line, version, way):
    (req,) = rq.parse_lines([line], "t")
    assert rq.direction(req, version) == way


def test_install_command_takes_the_user_s_file_as_it_is_and_checks_hashes_with_uv():
    argv = _venv.install_command("uv", "/g", ["/g/mlhost-requirements.txt", "/srv/app/requirements.txt"], None, [], False,
                                 "/t/uv", require_hashes=True)
    assert argv == ["/t/uv", "pip", "install", "--no-config", "--python", "/g/bin/python", "-r", "/g/mlhost-requirements.txt",
                    "-r", "/srv/app/requirements.txt", "--require-hashes"]


def test_normal_form_is_the_same_whichever_packaging_parsed_it(monkeypatch):
    """The fingerprint must not move when the plan loads another packaging (pip's vendored copy on a fresh host, the
    tool venv's afterwards): the form is the module's own, not packaging's str()."""
    (req,) = rq.parse_lines(["Requests[SOCKS,Security] >=2.31 , <3 ; python_version >= '3.8'"], "t")
    assert rq.normal_form(req) == 'requests[security,socks]<3,>=2.31 ; python_version >= "3.8"'
    (url,) = rq.parse_lines(["Six@https://files.example.internal/six-1.16.0-py2.py3-none-any.whl"], "t")
    assert rq.normal_form(url) == "six @ https://files.example.internal/six-1.16.0-py2.py3-none-any.whl"


def test_normal_form_with_pip_s_vendored_packaging(monkeypatch):
    lines = ["Requests[SOCKS,Security] >=2.31 , <3 ; python_version >= '3.8'", "six@file:///srv/six-1.16.0-py2.py3-none-any.whl",
             "torch==2.5.1 ; platform_system == 'Linux' and platform_machine == 'x86_64'"]
    ours = [rq.normal_form(r) for r in rq.parse_lines(lines, "t")]
    monkeypatch.setattr(rq, "_MODULES", {})
    assert rq._load(("pip._vendor.packaging",)) == "pip._vendor.packaging"
    assert [rq.normal_form(r) for r in rq.parse_lines(lines, "t")] == ours
