# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Progress of a long install, from the package manager's own status output.

PRIVATE to the collection: no compatibility promise outside it.

The collection's action plugins for the installing modules (plugins/plugin_utils/_progress_action.py) run the
module as an async job and set ``MLHOST_PROGRESS_FILE`` in its environment. The module then hands that file to
the package manager as its status output: apt-get's ``-o APT::Status-Fd=<fd>`` (``dlstatus:``/``pmstatus:`` lines)
and pip's ``--log <file>``. The poller on the controller reads the file and turns it into one line with the
parsers below. Without the variable (check mode, ``mlhost_progress: false``, a module run on its own) nothing
changes. The module removes the file when it exits.
"""

from __future__ import annotations

import atexit
import os
import re
import typing as t

ENV = "MLHOST_PROGRESS_FILE"


def progress_path() -> str | None:
    """The status file the poller reads (None: no progress asked)."""
    path = os.environ.get(ENV, "")
    if not path or "\0" in path:
        return None
    path = os.path.expanduser(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def open_status_fd() -> int | None:
    """A descriptor open for appending to the status file (None: no progress asked); the caller closes it."""
    path = progress_path()
    if path is None:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        return None  # progress is a courtesy: an install never fails for want of it


_APT_LINE = re.compile(r"^(dlstatus|pmstatus):([^:]*):([0-9.]+):(.*)$")


def parse_apt_status(text: str) -> str | None:
    """One line from apt-get's Status-Fd output (``dlstatus:N:PERCENT:Retrieving file N of M``,
    ``pmstatus:PKG:PERCENT:ACTION``): the download while it runs, then dpkg's percentage and the packages set up."""
    last_dl = None
    last_pm = None
    seen: t.List[str] = []
    done = set()
    for line in text.splitlines():
        m = _APT_LINE.match(line.strip())
        if not m:
            continue
        kind, what, percent, action = m.groups()
        if kind == "dlstatus":
            last_dl = (float(percent), action)
        elif what != "dpkg-exec":
            last_pm = (float(percent), action)
            if what not in seen:
                seen.append(what)
            if action.startswith("Installed ") or action.startswith("Removed ") or action.startswith("Completely removed "):
                done.add(what)
    if last_pm is not None:
        # dpkg's percentage covers the whole run; the packages are counted as dpkg reaches them (no total is given
        # in the status lines).
        return f"apt: {last_pm[0]:.0f}% done, {len(done)} packages set up ({last_pm[1].strip()})"
    if last_dl is not None:
        return f"apt: downloading, {last_dl[0]:.0f}% ({last_dl[1].strip()})"
    return None


_PIP_STAMP = re.compile(r"^\S+ ")
_PIP_COLLECT = re.compile(r"^(?:Collecting|Processing|Obtaining) (\S+)")
_PIP_DOWNLOAD = re.compile(r"^\s*Downloading (\S+)(?: \(([^)]*)\))?")
_PIP_INSTALLING = re.compile(r"^Installing collected packages: (.*)$")
_PIP_DONE = re.compile(r"^Successfully installed (.*)$")
_PIP_BUILD = re.compile(r"^\s*Building wheel for (\S+)")


def parse_pip_log(text: str) -> str | None:
    """One line from pip's ``--log`` file (each line led by a timestamp): packages collected and the download in
    progress, then the install of the collected packages."""
    collected = 0
    download = None
    building = None
    installing = None
    installed = None
    for raw in text.splitlines():
        line = _PIP_STAMP.sub("", raw, count=1)
        if _PIP_COLLECT.match(line):
            collected += 1
            download = building = None
            continue
        m = _PIP_DOWNLOAD.match(line)
        if m:
            download = m.group(1).rsplit("/", 1)[-1] + (f" ({m.group(2)})" if m.group(2) else "")
            continue
        m = _PIP_BUILD.match(line)
        if m:
            building = m.group(1)
            continue
        m = _PIP_INSTALLING.match(line)
        if m:
            installing = len([n for n in m.group(1).split(",") if n.strip()])
            continue
        m = _PIP_DONE.match(line)
        if m:
            installed = len(m.group(1).split())
    if installed is not None:
        return f"pip: {installed} packages installed"
    if installing is not None:
        return f"pip: installing {installing} collected packages"
    if not collected:
        return None
    now = f", downloading {download}" if download else (f", building a wheel for {building}" if building else "")
    return f"pip: {collected} packages collected{now}"


def summary(text: str) -> str | None:
    """The progress line of a status file, whichever installer wrote it (None: nothing to say yet)."""
    return parse_apt_status(text) or parse_pip_log(text)
