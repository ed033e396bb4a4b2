# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Requirements against what an environment holds, with ``packaging``.

PRIVATE to the collection: no compatibility promise outside it.

``packaging`` is imported lazily: a host whose Python lacks it gets it from
the module's tool venv (see ``_venv``), which ``add_search_path`` puts on
``sys.path`` first.
"""

from __future__ import annotations

import importlib
import re
import sys
import typing as t


def add_search_path(path: str) -> None:
    if path not in sys.path:
        sys.path.insert(0, path)
        importlib.invalidate_caches()


def have_packaging() -> bool:
    try:
        importlib.import_module("packaging.requirements")
        return True
    except ImportError:
        return False


def _pk() -> t.Any:
    requirements = importlib.import_module("packaging.requirements")
    utils = importlib.import_module("packaging.utils")
    version = importlib.import_module("packaging.version")
    return requirements, utils, version


def canonical(name: str) -> str:
    return _pk()[1].canonicalize_name(name)


class RequirementError(ValueError):
    pass


def parse_lines(lines: t.Iterable[str], source: str) -> list[t.Any]:
    """Parse requirement lines (comments, blank lines and pip options other than -r/-c are refused clearly)."""
    requirements_mod = _pk()[0]
    parsed = []
    for number, raw in enumerate(lines, start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            raise RequirementError(
                f"{source} line {number}: {line!r} is a pip option; give indexes, links and constraints with the "
                "module's options (index_url, extra_index_urls, find_links, constraints), not inside requirements."
            )
        try:
            parsed.append(requirements_mod.Requirement(line))
        except requirements_mod.InvalidRequirement as exc:
            raise RequirementError(f"{source} line {number}: {line!r} is not a valid requirement: {exc}") from exc
    return parsed


# PEP 508 in outline, to refuse a malformed line before anything is installed (``packaging`` may not be on the
# host yet: it comes with the tool venv, which is made only after the input is known to be good).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9.*+!_-]*"
_CLAUSE = rf"(?:~=|===|==|!=|<=|>=|<|>)\s*{_VERSION}"
_SPECS = rf"{_CLAUSE}(?:\s*,\s*{_CLAUSE})*"
_REQUIREMENT = re.compile(
    rf"^{_NAME}\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?:\(\s*{_SPECS}\s*\)|{_SPECS}|@\s*\S+\s*)?\s*(?:;\s*\S.*)?$"
)


def check_syntax(lines: t.Iterable[str], source: str) -> None:
    """Refuse pip options and lines that are not requirements, without ``packaging``: nothing has run yet."""
    for number, raw in enumerate(lines, start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            raise RequirementError(
                f"{source} line {number}: {line!r} is a pip option; give indexes, links and constraints with the "
                "module's options (index_url, extra_index_urls, find_links, constraints), not inside requirements."
            )
        if not _REQUIREMENT.match(line):
            raise RequirementError(
                f"{source} line {number}: {line!r} is not a valid requirement: write a name, optional [extras], "
                "version specifiers such as >=1.26,<2 (or @ URL) and optional ; markers, for example numpy>=1.26,<2."
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


def lock_text(installed: dict[str, str], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{name}=={installed[name]}" for name in sorted(installed)]
    return "\n".join(lines) + "\n"
