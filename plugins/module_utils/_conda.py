# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Conda installations (Miniforge, Miniconda, Anaconda) found on a host.

PRIVATE to the collection: no compatibility promise outside it.
Everything is read from ``conda-meta``: no conda process is started.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

PREFIX_NAMES = ("miniforge3", "mambaforge", "miniconda3", "anaconda3", "conda")
BASES = ("/opt", "/usr/local", "/root")


def common_prefixes(root: Sysroot) -> list[str]:
    prefixes = [f"{base}/{name}" for base in BASES for name in PREFIX_NAMES]
    for home in root.listdir("home"):
        prefixes.extend(f"/home/{home}/{name}" for name in PREFIX_NAMES)
    return prefixes


def package_version(root: Sysroot, prefix: str, package: str) -> str | None:
    """Version of ``package`` from its conda-meta record file name (name-version-build.json)."""
    pattern = re.compile(rf"{re.escape(package)}-([^-]+)-[^-]+\.json")
    for name in root.listdir(prefix, "conda-meta"):
        match = pattern.fullmatch(name)
        if match:
            return match.group(1)
    return None


def conda_installs(root: Sysroot, extra_prefixes: t.Iterable[str] = ()) -> list[dict[str, t.Any]]:
    """[{prefix, version, mamba_version, envs}] for each prefix holding a conda base."""
    found = []
    for prefix in list(extra_prefixes) + common_prefixes(root):
        if any(entry["prefix"] == prefix for entry in found):
            continue
        if not root.isdir(prefix, "conda-meta") or not root.exists(prefix, "bin", "conda"):
            continue
        envs = [name for name in root.listdir(prefix, "envs") if root.isdir(prefix, "envs", name, "conda-meta")]
        found.append(
            {
                "prefix": prefix,
                "version": package_version(root, prefix, "conda"),
                "mamba_version": package_version(root, prefix, "mamba"),
                "envs": envs,
            }
        )
    return found


RECORD_KEYS = ("name", "version", "build", "build_number", "depends", "channel", "subdir", "url", "md5", "fn", "requested_spec", "requested_specs")


def read_records(root: Sysroot, prefix: str) -> tuple[dict[str, dict[str, t.Any]], list[str]]:
    """The package records of an environment, from ``conda-meta/*.json``: (name -> record, unreadable files).

    Records are what conda, mamba and rattler write after linking a package; only the
    keys in RECORD_KEYS are kept. A file that does not parse is reported, not guessed at.
    """
    records: dict[str, dict[str, t.Any]] = {}
    bad: list[str] = []
    for name in sorted(root.listdir(prefix, "conda-meta")):
        if not name.endswith(".json"):
            continue
        text = root.read(prefix, "conda-meta", name)
        try:
            data = json.loads(text or "")
            record = {k: data[k] for k in RECORD_KEYS if k in data}
            record["name"] = str(record["name"]).lower()
            record["version"] = str(record["version"])
            record.setdefault("build", "")
            record.setdefault("depends", [])
        except (ValueError, KeyError, TypeError):
            bad.append(name)
            continue
        records[record["name"]] = record
    return records, bad
