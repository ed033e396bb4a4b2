# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The one atomic file writer of the collection's modules.

PRIVATE to the collection: no compatibility promise outside it.

A file is written beside its target (same directory, a private name, mode set before the
rename) and moved over it with one rename(2): a reader sees the old file or the new one,
never half of either, and a failure leaves the old one.
"""

from __future__ import annotations

import hashlib
import os
import secrets


def read_bytes(path: str) -> bytes | None:
    """The file's content; None when it is absent or unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def atomic_write(path: str, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; parents are made (0755) where missing."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.mlhost-tmp-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def differs(path: str, data: bytes | str) -> bool:
    """True when ``path`` does not hold exactly ``data``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return read_bytes(path) != raw


def write_if_changed(path: str, data: bytes | str, mode: int = 0o644) -> bool:
    """Write ``data`` atomically when it differs from what ``path`` holds; True when it wrote."""
    if not differs(path, data):
        return False
    atomic_write(path, data, mode)
    return True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
