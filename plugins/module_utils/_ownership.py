# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""What the collection may remove, replace or overwrite: only what it created.

PRIVATE to the collection: no compatibility promise outside it.

Two rules, checked in every plan before anything changes:

* **Protected paths** are never a target, owned or not: the root, the system directories
  (``/bin``, ``/boot``, ``/dev``, ``/etc``, ``/home``, ``/lib*``, ``/opt``, ``/proc``, ``/root``,
  ``/run``, ``/sbin``, ``/srv``, ``/sys``, ``/tmp``, ``/usr``, ``/var``) and the directories
  directly under them (``/var/log``, ``/home/alice``, ``/usr/local``); everything below
  ``/usr``, ``/etc``, ``/boot``, ``/dev``, ``/proc``, ``/sys``, ``/run``, ``/bin``, ``/sbin``,
  ``/lib*`` and ``/var/lib``; the collection's tool directory; a conda installation's
  ``envs/`` directory itself; any path inside another environment (a venv or a conda
  prefix); and any symlink that leads into one of those. Direct children of ``/opt``,
  ``/srv`` and ``/tmp`` are where applications live (``/opt/miniforge3``): they are allowed,
  and the ownership marker guards them.
* **Ownership**: an existing directory or file is removed, replaced or overwritten only when
  it carries the collection's marker: a ``.mlhost-owned`` file inside a directory the
  collection created, or the marker line at the top of a text file it wrote (lock files).
  The refusal says how to adopt an existing one.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

MARKER = ".mlhost-owned"
TEXT_MARKER = "# Written by mlinfra.mlhost"

_ROOTS = ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/proc", "/root", "/run",
          "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/media", "/mnt", "/snap", "/nix")
# Everything below these is the system's own.
_WHOLE_TREES = ("/usr", "/etc", "/boot", "/dev", "/proc", "/sys", "/run", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                "/var/lib", "/var/cache/apt", "/snap", "/nix")
# Direct children of these are application directories (/opt/miniforge3), guarded by the marker instead.
_APP_PARENTS = ("/opt", "/srv", "/tmp", "/mnt", "/media")


def _below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def protected_reason(path: str, tool_dir: str | None = None) -> str | None:
    """Why ``path`` (absolute, normalized) may never be an environment or prefix; None when it may."""
    if path == "/":
        return "is the root directory"
    for top in _WHOLE_TREES:
        if _below(path, top):
            return f"is inside {top}, which belongs to the system"
    parent = os.path.dirname(path)
    if path in _ROOTS:
        return "is a system directory"
    if parent in _ROOTS and parent not in _APP_PARENTS:
        return f"is a system directory (directly under {parent})"
    if tool_dir:
        tool = os.path.normpath(tool_dir)
        if _below(path, tool) or _below(tool, path):
            return f"is, or holds, the collection's tool directory {tool}"
    if os.path.basename(path) == "envs" and os.path.isdir(os.path.join(parent, "conda-meta")):
        return f"is the envs directory of the conda installation {parent}"
    for ancestor in _ancestors(path):
        if os.path.isfile(os.path.join(ancestor, "pyvenv.cfg")):
            return f"is inside the Python environment {ancestor}"
        if os.path.isdir(os.path.join(ancestor, "conda-meta")):
            if os.path.dirname(path) == os.path.join(ancestor, "envs"):
                continue  # <conda>/envs/<name>: where conda keeps its named environments
            return f"is inside the conda environment {ancestor}"
    return None


def _ancestors(path: str) -> t.Iterator[str]:
    parent = os.path.dirname(path)
    while parent and parent != "/":
        yield parent
        parent = os.path.dirname(parent)


def check_target(path: t.Any, what: str, example: str, tool_dir: str | None = None) -> str:
    """Refuse a target that is not an absolute, clean path or that is protected; returns it normalized.

    ``what`` names the option (``path``, ``prefix``); ``example`` is a good value to suggest. Where the
    path is a symlink (or runs through one), where it leads is checked too."""
    text = "" if path is None else str(path)
    if not text:
        raise ModuleError(f"{what} is empty. Give an absolute path such as {example}.")
    if "\0" in text or any(c in text for c in "\n\r"):
        raise ModuleError(f"{what} holds a NUL byte or a line break. Give an absolute path such as {example}.")
    if not os.path.isabs(text):
        raise ModuleError(f"{what} {text!r} must be an absolute path, such as {example}.")
    norm = os.path.normpath(text)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    real = os.path.realpath(norm)
    for where in (norm, real):
        reason = protected_reason(where, tool_dir)
        if reason:
            shown = repr(text) if where == norm else f"{text!r} (a link to {where})"
            raise ModuleError(
                f"{what} {shown} {reason}: the collection never creates, replaces or removes such a directory. "
                f"Choose a directory of its own, such as {example}. Nothing was changed."
            )
    return norm


# Markers ----------------------------------------------------------------------------------


def is_owned_dir(path: str) -> bool:
    """True when the directory ``path`` (or the directory a symlink ``path`` points to) carries the marker."""
    return os.path.isfile(os.path.join(os.path.realpath(path), MARKER))


def write_marker(directory: str, module: str, **info: t.Any) -> None:
    """Mark ``directory`` as created by ``module`` (``mlinfra.mlhost.<name>``)."""
    data = {"created_by": module, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    with open(os.path.join(directory, MARKER), "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.write("\n")
    os.chmod(os.path.join(directory, MARKER), 0o644)


def refuse_unowned_dir(path: str, what: str, action: str) -> None:
    """Refuse to ``action`` (remove, replace) an existing directory the collection did not create."""
    if os.path.lexists(path) and not is_owned_dir(path):
        kind = "a symlink" if os.path.islink(path) else ("a directory" if os.path.isdir(path) else "a file")
        raise ModuleError(
            f"{what} {path!r} is {kind} the collection did not create (it has no {MARKER} marker), so it will not "
            f"{action} it. Choose another {what}; or, if it is yours to hand over, move it away (the collection then "
            f"builds a new one), or adopt it by creating the file {os.path.join(os.path.realpath(path), MARKER)} "
            "(it will then be managed, and replaced or removed, like one the collection made). Nothing was changed."
        )


def text_is_owned(path: str, legacy: t.Callable[[str], bool] | None = None) -> bool:
    """True when the text file ``path`` is absent or starts with the collection's marker line (or, with ``legacy``,
    with a first line that ``legacy`` recognises as an earlier version's)."""
    if not os.path.lexists(path):
        return True
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return False
    return first.startswith(TEXT_MARKER) or (legacy is not None and legacy(first.rstrip("\n")))


def refuse_unowned_text(path: str, what: str) -> None:
    """Refuse to overwrite a file (lock_file) the collection did not write."""
    if not text_is_owned(path):
        raise ModuleError(
            f"{what} {path!r} exists and was not written by the collection (its first line is not "
            f"'{TEXT_MARKER} ...'), so it will not be overwritten. Choose another {what}, or remove the file "
            "if it is yours to replace. Nothing was changed."
        )
