# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The package-manager options of the mlinfra.mlhost modules that install packages (PACKAGE_MANAGER_OPTIONS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pkg_mgr:
    description: The package manager; V(auto) picks it from the distribution.
    type: str
    choices: [auto, apt, dnf]
    default: auto
  update_cache:
    description:
      - Refresh the package metadata before installing when it is older than O(cache_valid_time).
        Nothing is refreshed when nothing is missing.
    type: bool
    default: true
  cache_valid_time:
    description: Seconds for which refreshed package metadata counts as fresh (0 or more).
    type: int
    default: 86400
  lock_timeout:
    description:
      - Seconds to wait for the package manager's lock held by another process (apt C(DPkg::Lock::Timeout)), 0 or more.
    type: int
    default: 300
"""
