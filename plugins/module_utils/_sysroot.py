# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Reading files below a sysroot (``/`` for the live host, or an image tree).

PRIVATE to the collection: no compatibility promise outside it.
A reader never raises for a missing or unreadable file: it returns None.
"""

from __future__ import annotations

import glob
import os
import typing as t


class Sysroot:
    """Paths inside a root tree; every read is tolerant of absence."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root or "/")

    @property
    def live(self) -> bool:
        """True when the root is the running system (commands may be run)."""
        return self.root == "/"

    def path(self, *parts: str) -> str:
        rel = os.path.join(*parts).lstrip("/")
        return os.path.join(self.root, rel)

    def exists(self, *parts: str) -> bool:
        return os.path.exists(self.path(*parts))

    def isdir(self, *parts: str) -> bool:
        return os.path.isdir(self.path(*parts))

    def read(self, *parts: str, limit: int = 4 * 1024 * 1024) -> str | None:
        try:
            with open(self.path(*parts), "rb") as handle:
                return handle.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def read_bytes(self, *parts: str, limit: int = 4096) -> bytes | None:
        try:
            with open(self.path(*parts), "rb") as handle:
                return handle.read(limit)
        except OSError:
            return None

    def read_line(self, *parts: str) -> str | None:
        text = self.read(*parts, limit=65536)
        if text is None:
            return None
        text = text.strip()
        return text or None

    def listdir(self, *parts: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(*parts)))
        except OSError:
            return []

    def glob(self, pattern: str) -> list[str]:
        """Glob inside the root; returns paths as seen from inside the root."""
        found = glob.glob(self.path(pattern))
        prefix = self.root.rstrip("/")
        return sorted("/" + p[len(prefix):].lstrip("/") if prefix else p for p in found)

    def readlink_name(self, *parts: str) -> str | None:
        """The last component of a symlink's target (sysfs ``driver`` links)."""
        try:
            return os.path.basename(os.readlink(self.path(*parts)))
        except OSError:
            return None

    def readlink(self, *parts: str) -> str | None:
        """A symlink's target text, as written (DKMS's ``kernel-<kver>-<arch>`` and ``source`` links)."""
        try:
            return os.readlink(self.path(*parts))
        except OSError:
            return None

    def realpath(self, *parts: str) -> str:
        """Resolve a path inside the root, the result as seen from inside it."""
        full = os.path.realpath(self.path(*parts))
        prefix = self.root.rstrip("/")
        if prefix and full.startswith(prefix + "/"):
            return full[len(prefix):]
        return full if not prefix else full

    def is_executable(self, *parts: str) -> bool:
        p = self.path(*parts)
        return os.path.isfile(p) and os.access(p, os.X_OK)


def parse_kv_file(text: t.Optional[str]) -> dict[str, str]:
    """Parse ``KEY=value`` lines (os-release style, shell quoting stripped)."""
    result: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, dummy, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            value = value.replace('\\"', '"').replace("\\$", "$").replace("\\`", "`").replace("\\\\", "\\")
        result[key.strip()] = value
    return result
