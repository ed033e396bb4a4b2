# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Requirements against what an environment holds, with ``packaging``.

PRIVATE to the collection: no compatibility promise outside it.

``packaging`` is imported lazily (``load_packaging``): the host's own, else the
module's tool venv (see ``_venv``), else the copy pip vendors (``pip._vendor.packaging``:
the interpreter's pip, or the pip wheel that python3-venv's ensurepip uses, read from
the wheel without unpacking it). A plan can therefore always parse and compare, on a
fresh host too, before anything is installed.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
import sys
import sysconfig
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_text
from ansible_collections.mlinfra.mlhost.plugins.module_utils._ownership import TEXT_MARKER

_MODULES: dict[str, t.Any] = {}
# The pip wheels ensurepip installs from (Debian's python3-pip-whl, CPython's own bundle).
PIP_WHEEL_GLOBS = ("/usr/share/python-wheels/pip-*.whl",)


def add_search_path(path: str) -> None:
    if path not in sys.path:
        sys.path.insert(0, path)
        importlib.invalidate_caches()


def have_packaging() -> bool:
    """True when ``packaging`` (any of the sources ``load_packaging`` tries, bar the tool venv) can be used."""
    return _load(("packaging", "pip._vendor.packaging")) is not None


def _load(prefixes: t.Iterable[str]) -> str | None:
    if _MODULES:
        return _MODULES["source"]
    for prefix in prefixes:
        try:
            mods = {part: importlib.import_module(f"{prefix}.{part}") for part in ("requirements", "utils", "version", "specifiers", "markers")}
        except ImportError:
            continue
        _MODULES.update(mods, source=prefix)
        return prefix
    return None


def _pip_wheels() -> list[str]:
    bundled = os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip", "_bundled", "pip-*.whl")
    found = []
    for pattern in PIP_WHEEL_GLOBS + (bundled,):
        found += sorted(glob.glob(pattern))
    return found


# The packaging wheel a plan fetches on a host that has no packaging, no pip and no venv module's pip wheel (a fresh
# Debian host before build_tools installs python3-venv): this exact file, checked by its sha256 (PyPI, 2026-12-02).
PACKAGING_VERSION = "26.3"  # also the tool venv's pin (_venv.TOOL_PACKAGING_VERSION)
PACKAGING_WHEEL = f"packaging-{PACKAGING_VERSION}-py3-none-any.whl"
PACKAGING_WHEEL_SHA256 = "d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c"


def load_packaging(tool_sites: t.Iterable[str] = (), fetch_wheel: t.Callable[[str, str], tuple[str | None, str]] | None = None) -> str:
    """Make ``packaging`` usable; returns where it came from. Raises ModuleError when no source has it.

    Sources, in order: the host Python's own, the tool venv's, pip's vendored copy (pip installed, or the venv
    module's pip wheel), and last ``fetch_wheel(name, sha256)``: a verified copy of ``PACKAGING_WHEEL`` in a
    temporary place (it returns the wheel's path, or None, and what it tried), imported from the zip as it is."""
    if _load(("packaging",)):
        return "packaging"
    for site in tool_sites:
        add_search_path(site)
    if _load(("packaging", "pip._vendor.packaging")):
        return _MODULES["source"]
    for wheel in _pip_wheels():
        add_search_path(wheel)
        if _load(("pip._vendor.packaging",)):
            return _MODULES["source"]
    tried = ""
    if fetch_wheel is not None:
        wheel, tried = fetch_wheel(PACKAGING_WHEEL, PACKAGING_WHEEL_SHA256)
        if wheel:
            add_search_path(wheel)
            if _load(("packaging",)):
                return "packaging (a verified wheel fetched for the plan)"
    raise ModuleError(
        "Requirements cannot be read on this host: its Python has neither the packaging library nor pip (not even the "
        f"pip wheel of the venv module), and {PACKAGING_WHEEL} could not be had for the plan"
        + (f" ({mask_text(tried)})" if tried else "")
        + ". Install python3-venv (Debian/Ubuntu: apt-get install python3-venv; RHEL: it comes with python3), which "
        "python_env needs to build environments anyway, or put that wheel in a find_links directory, then rerun. "
        "Nothing was changed."
    )


def _pk() -> t.Any:
    if not _MODULES:
        load_packaging()
    return _MODULES["requirements"], _MODULES["utils"], _MODULES["version"]


def canonical(name: str) -> str:
    return _pk()[1].canonicalize_name(name)


class RequirementError(ModuleError):
    """A requirement line that is refused; its message shows the line masked (it may hold a token)."""


def strip_line(raw: t.Any, number: int, source: str) -> str:
    """A requirements line with its comment stripped; a NUL byte or a line break in it is refused."""
    text = "" if raw is None else str(raw)
    if any(c in text for c in "\0\n\r"):
        raise RequirementError(
            f"{source} line {number}: {mask_text(text)!r} holds a NUL byte or a line break: give one requirement per "
            "item or line. Nothing was changed."
        )
    return re.sub(r"(^|\s)#.*$", "", text).strip()


def _plain_line(raw: t.Any, number: int, source: str) -> str:
    """A requirement line with its comment stripped; refuses what no requirement holds."""
    line = strip_line(raw, number, source)
    if line.startswith("-"):
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} is a pip option; give indexes, links and constraints with the "
            "module's options (index_url, extra_index_urls, find_links, constraints), not inside requirements. "
            "Nothing was changed."
        )
    if not line.isascii():
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} holds characters that are not ASCII (a digit such as '５' is not "
            "0-9): write names and versions in plain ASCII, for example numpy==1.26.4. Nothing was changed."
        )
    return line


def parse_lines(lines: t.Iterable[str], source: str) -> list[t.Any]:
    """Parse requirement lines (comments, blank lines and pip options other than -r/-c are refused clearly)."""
    requirements_mod = _pk()[0]
    parsed = []
    for number, raw in enumerate(lines, start=1):
        line = _plain_line(raw, number, source)
        if not line:
            continue
        try:
            parsed.append(requirements_mod.Requirement(line))
        except requirements_mod.InvalidRequirement as exc:
            raise RequirementError(
                f"{source} line {number}: {mask_text(line)!r} is not a valid requirement: {mask_text(str(exc))}. Write a "
                "name, optional [extras], version specifiers such as >=1.26,<2 (or @ URL) and optional ; markers, for "
                "example numpy>=1.26,<2. Nothing was changed."
            ) from exc
    return parsed


# PEP 508 in outline, to refuse a malformed line before anything is installed (``packaging`` may not be on the
# host yet: it comes with the tool venv, which is made only after the input is known to be good).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9.*+!_-]*"
_CLAUSE = rf"(?:~=|===|==|!=|<=|>=|<|>)\s*{_VERSION}"
_SPECS = rf"{_CLAUSE}(?:\s*,\s*{_CLAUSE})*"
_REQUIREMENT = re.compile(
    rf"{_NAME}\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?:\(\s*{_SPECS}\s*\)|{_SPECS}|@\s*\S+\s*)?\s*(?:;\s*\S.*)?"
)


def check_syntax(lines: t.Iterable[str], source: str) -> None:
    """Refuse pip options and lines that are not requirements, without ``packaging``: nothing has run yet."""
    for number, raw in enumerate(lines, start=1):
        line = _plain_line(raw, number, source)
        if line and not _REQUIREMENT.fullmatch(line):
            raise RequirementError(
                f"{source} line {number}: {mask_text(line)!r} is not a valid requirement: write a name, optional [extras], "
                "version specifiers such as >=1.26,<2 (or @ URL) and optional ; markers, for example numpy>=1.26,<2. "
                "Nothing was changed."
            )


def satisfied(requirement: t.Any, installed: dict[str, str], environment: dict[str, str] | None) -> bool:
    """Is ``requirement`` met by ``installed`` (canonical name -> version)?

    A requirement whose marker does not apply to the environment counts as met. A direct
    reference (``name @ url``) is met by any installed version of ``name``. Extras are not
    checked beyond the base distribution.
    """
    if requirement.marker is not None and environment is not None and not requirement.marker.evaluate(environment):
        return True
    version = installed.get(canonical(requirement.name))
    if version is None:
        return False
    if requirement.url:
        return True
    return requirement.specifier.contains(version, prereleases=True)


def diff_installed(before: dict[str, str], after: dict[str, str]) -> dict[str, t.Any]:
    """added / removed / upgraded (and downgraded) between two installed sets."""
    version_mod = _pk()[2]
    added = {name: after[name] for name in sorted(after) if name not in before}
    removed = {name: before[name] for name in sorted(before) if name not in after}
    changed = {}
    for name in sorted(set(before) & set(after)):
        if before[name] != after[name]:
            changed[name] = {"from": before[name], "to": after[name]}
    upgraded = {}
    downgraded = {}
    for name, change in changed.items():
        try:
            newer = version_mod.Version(change["to"]) > version_mod.Version(change["from"])
        except version_mod.InvalidVersion:
            newer = True
        (upgraded if newer else downgraded)[name] = change
    return {"added": added, "removed": removed, "upgraded": upgraded, "downgraded": downgraded}


# The first line of a lock file written before the marker line existed (collection 0.x): still ours.
_LEGACY_LOCK_HEAD = re.compile(r"# Exact pins of /[^\n]*, written by mlinfra\.mlhost\.python_env\.")


def lock_text(installed: dict[str, str], header: str) -> str:
    """A lock file: the collection's marker line (``_ownership.TEXT_MARKER``), comments, then ``name==version`` lines."""
    head = header.splitlines() or [""]
    lines = [f"{TEXT_MARKER} {head[0]}"] + [f"# {line}" for line in head[1:]]
    lines += [f"{name}=={installed[name]}" for name in sorted(installed)]
    return "\n".join(lines) + "\n"


def is_legacy_lock(first_line: str) -> bool:
    """True for the first line of a lock file an earlier version of python_env wrote."""
    return bool(_LEGACY_LOCK_HEAD.fullmatch(first_line.rstrip("\n")))
