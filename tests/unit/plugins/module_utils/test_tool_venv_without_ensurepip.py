# SPDX-License-Identifier: GPL-3.0-or-later
"""The tool venv (and a pip-backend env's pip) made without ensurepip, for real: ``python -m venv --without-pip``,
then a pip wheel run as a zipapp installs into it, offline, from a find_links directory. This is what makes
python_env work on a fresh Debian host without python3-venv (issue #15 item 7)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError


class RealRunner:
    """Runs the commands for real (this test builds a real venv)."""

    def __init__(self):
        self.calls = []

    def run(self, argv, check=True, env=None, **kwargs):
        self.calls.append(list(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300, check=False)

        class Result:
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        return Result()


def toy_wheel(directory, name="mlhosttoy", version="1.0"):
    """A minimal, valid pure-Python wheel (made here: a stand-in package, not from PyPI)."""
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: mlhost-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for item, text in files.items():
            zf.writestr(item, text)
    return path


def host_pip_wheel():
    wheels = rq._pip_wheels()
    assert wheels, "this test needs the test Python's own pip wheel (ensurepip/_bundled or /usr/share/python-wheels)"
    return wheels[-1]


def test_tool_venv_is_made_without_ensurepip_and_installs_offline(tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    toy_wheel(str(links))
    venv = _venv.tool_paths(str(tmp_path / "tools"))["venv"]
    runner = RealRunner()
    _venv.ensure_tool_venv(runner, venv, ["mlhosttoy==1.0"], python=sys.executable, find_links=[str(links)],
                           offline=True, pip_wheel=host_pip_wheel())
    assert runner.calls[0] == [sys.executable, "-m", "venv", "--without-pip", venv]
    assert runner.calls[1][1].endswith(".whl/pip"), runner.calls[1]  # the wheel's pip, run as a zipapp
    assert _venv.tool_has(venv, "mlhosttoy")
    assert not _venv.tool_has(venv, "pip"), "made --without-pip: no pip in the tool venv"
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import mlhosttoy; print(mlhosttoy.VALUE)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "42"
    # A second call finds the venv made and only installs (nothing to do: the toy is there).
    runner.calls.clear()
    _venv.ensure_tool_venv(runner, venv, ["mlhosttoy==1.0"], python=sys.executable, find_links=[str(links)],
                           offline=True, pip_wheel=host_pip_wheel())
    assert len(runner.calls) == 1 and "venv" not in runner.calls[0][1:3]


def test_a_pip_wheel_is_taken_from_the_host_before_any_download(monkeypatch):
    monkeypatch.setattr(rq, "_pip_wheels", lambda: ["/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl"])

    def no_fetch(name, sha256):
        raise AssertionError("fetched although the host has a pip wheel")
    assert _venv.pip_wheel_for(no_fetch) == ("/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl", "")


def test_without_a_host_wheel_the_pinned_pip_is_fetched_by_its_sha256(monkeypatch):
    monkeypatch.setattr(rq, "_pip_wheels", lambda: [])
    asked = []

    def fetch(name, sha256):
        asked.append((name, sha256))
        return "/tmp/x/" + name, ""
    assert _venv.pip_wheel_for(fetch) == ("/tmp/x/" + _venv.PIP_WHEEL, "")
    assert asked == [(_venv.PIP_WHEEL, _venv.PIP_WHEEL_SHA256)]
    assert len(_venv.PIP_WHEEL_SHA256) == 64


def test_fetch_wheel_reads_the_wheels_own_project_page(tmp_path):
    """fetch_wheel served only packaging's page; the pip wheel needs pip's (the index's /pip/ page)."""
    data = b"not really a wheel"
    sha = hashlib.sha256(data).hexdigest()
    pages = []

    class Host:
        class module:
            tmpdir = str(tmp_path)

        def fetch(self, url, timeout=None, ca_path=None):
            pages.append(url)

            class Body:
                def read(self):  # pylint: disable=unused-argument
                    return (b'<a href="../../files/pip-26.3-py3-none-any.whl#sha256=x">pip</a>' if url.endswith("/")
                            else data)
            return Body()
    path, tried = _venv.fetch_wheel(Host(), "pip-26.3-py3-none-any.whl", sha, find_links=[], index_url="https://mirror.example/simple",
                                    offline=False, ca=None)
    assert pages[0] == "https://mirror.example/simple/pip/"
    assert path and open(path, "rb").read() == data and tried == ""


def test_a_venv_that_cannot_be_made_names_both_fixes(tmp_path):
    class Fails(RealRunner):
        def run(self, argv, **kwargs):
            class Result:
                rc, out, err = 1, "", "ensurepip is not available"
            return Result()
    venv = _venv.tool_paths(str(tmp_path / "tools"))["venv"]
    with pytest.raises(ModuleError, match=r"python3-venv.*pip-26\.3-py3-none-any\.whl") as err:
        _venv.ensure_tool_venv(Fails(), venv, ["uv==1"], python=sys.executable)
    assert err.value.details["stage"] == "venv"
