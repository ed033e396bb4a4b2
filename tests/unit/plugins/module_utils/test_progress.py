# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress parsers, over captured apt Status-Fd output and a captured pip --log file (fixtures/README.md)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _progress

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "progress")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def upto(text: str, marker: str) -> str:
    """The file as the poller would read it while the installer is at ``marker`` (the line included)."""
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if marker in line)
    return "\n".join(lines[: index + 1])


APT = fixture("apt-status-fd.txt")
PIP = fixture("pip-install.log")


def test_apt_download_then_dpkg():
    assert _progress.parse_apt_status(upto(APT, "dlstatus:2:21.2640")) == "apt: downloading, 21% (Retrieving file 2 of 3)"
    assert _progress.parse_apt_status(upto(APT, "Unpacking make")) == "apt: 23% done, 0 packages set up (Unpacking make (amd64))"
    assert _progress.parse_apt_status(upto(APT, "Installed make")) == "apt: 77% done, 2 packages set up (Installed make (amd64))"
    assert _progress.parse_apt_status(APT) == "apt: 92% done, 3 packages set up (Installed patch (amd64))"


def test_apt_ignores_other_lines_and_hostile_text():
    noise = "E: Unable to fetch\npmstatus:gcc-12:not-a-number:Unpacking\nmediachange:disk\n" + "\x00\x1b[31m" + "\n"
    assert _progress.parse_apt_status(noise) is None
    assert _progress.parse_apt_status("") is None
    # an action that holds colons stays whole (dpkg's 'conffile prompt' lines have them)
    line = "pmstatus:nvidia-driver:50.0000:Configuring nvidia-driver: a message\n"
    assert _progress.parse_apt_status(line) == "apt: 50% done, 0 packages set up (Configuring nvidia-driver: a message)"


def test_pip_collect_download_install():
    assert _progress.parse_pip_log(upto(PIP, "Processing /opt/pypi/files/idna")) == "pip: 2 packages collected"
    assert _progress.parse_pip_log(upto(PIP, "Downloading packaging")) == (
        "pip: 3 packages collected, downloading packaging-26.4-py3-none-any.whl (140 kB)")
    assert _progress.parse_pip_log(upto(PIP, "Installing collected packages")) == "pip: installing 3 collected packages"
    assert _progress.parse_pip_log(PIP) == "pip: 3 packages installed"


def test_pip_nothing_yet():
    assert _progress.parse_pip_log(upto(PIP, "Created temporary directory")) is None


def test_summary_picks_the_installer():
    assert _progress.summary(APT).startswith("apt: ")
    assert _progress.summary(PIP).startswith("pip: ")
    assert _progress.summary("") is None


def test_progress_path_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(_progress.ENV, raising=False)
    assert _progress.progress_path() is None
    assert _progress.open_status_fd() is None
    target = tmp_path / "async" / "mlhost-progress-x"
    monkeypatch.setenv(_progress.ENV, str(target))
    fd = _progress.open_status_fd()
    assert fd is not None
    os.write(fd, b"pmstatus:make:10.0:Unpacking make (amd64)\n")
    os.close(fd)
    assert target.read_text() == "pmstatus:make:10.0:Unpacking make (amd64)\n"
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    _progress._remove(str(target))
    assert not target.exists()


@pytest.mark.parametrize("value", ["", "bad\0path"])
def test_progress_path_refuses_nonsense(monkeypatch, value):
    if "\0" in value:
        # an environment cannot hold a NUL; the check stands for a caller that passes os.environ-like data
        monkeypatch.setattr(_progress.os, "environ", {_progress.ENV: value})
    else:
        monkeypatch.setenv(_progress.ENV, value)
    assert _progress.progress_path() is None


class _Runner:
    """Records each apt-get call and writes to the status descriptor it was handed, as apt does."""

    def __init__(self):
        self.calls = []

    def run(self, argv, check=True, **kwargs):
        from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult

        self.calls.append((list(argv), kwargs))
        for fd in kwargs.get("pass_fds", []):
            os.write(fd, b"pmstatus:make:50.0:Unpacking make (amd64)\n")
        return CommandResult(0, "", "")


def test_apt_install_hands_its_status_to_the_file(tmp_path, monkeypatch):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import Apt

    target = tmp_path / "mlhost-progress-y"
    monkeypatch.setenv(_progress.ENV, str(target))
    runner = _Runner()
    Apt(runner).install(["make"])
    (argv, kwargs), = runner.calls
    fd = kwargs["pass_fds"][0]
    assert argv[:3] == ["apt-get", "-o", f"APT::Status-Fd={fd}"]
    assert argv[-2:] == ["install", "make"]
    assert _progress.parse_apt_status(target.read_text()) == "apt: 50% done, 0 packages set up (Unpacking make (amd64))"
    with pytest.raises(OSError):
        os.fstat(fd)  # closed after the run


def test_apt_install_without_progress_is_unchanged(monkeypatch):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import Apt

    monkeypatch.delenv(_progress.ENV, raising=False)
    runner = _Runner()
    Apt(runner).install(["make"])
    (argv, kwargs), = runner.calls
    assert kwargs == {}
    assert not any("Status-Fd" in a for a in argv)
