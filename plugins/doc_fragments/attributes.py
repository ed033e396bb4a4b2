# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Shared attribute documentation for mlinfra.mlhost modules."""

from __future__ import annotations


class ModuleDocFragment:
    # Every module: check mode and diff mode.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it would have, without changing anything.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when run with C(--diff).
  platform:
    description: Target operating systems.
    support: full
    platforms: posix
"""

    # Facts modules.
    FACTS = r"""
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that updates existing variables.
    support: full
"""
