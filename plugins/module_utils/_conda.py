# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Conda installations (Miniforge, Miniconda, Anaconda) found on a host.

PRIVATE to the collection: no compatibility promise outside it.
Everything is read from ``conda-meta``: no conda process is started.
"""

from __future__ import annotations

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
    pattern = re.compile(rf"^{re.escape(package)}-([^-]+)-[^-]+\.json$")
    for name in root.listdir(prefix, "conda-meta"):
        match = pattern.match(name)
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
