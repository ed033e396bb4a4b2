# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The cuda_driver_compatible filter: whether an NVIDIA driver can run a CUDA toolkit release."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cuda_driver_compatible
version_added: 1.0.0
short_description: Whether an NVIDIA driver can run a CUDA toolkit release
description:
  - Arguments are strings, versions in ASCII digits (quote versions in YAML); anything else, a trailing newline
    included, fails naming the filter and the argument, never a guess.
  - True when the driver is at least the toolkit's minimum driver.
  - With O(minor_version_compat=true), true when the driver is at least the floor of the toolkit's major
    version (450.80.02 for 11.x, 525.60.13 for 12.x, 580.65.06 for 13.x), as NVIDIA's minor-version
    compatibility allows, without features that need a newer driver.
positional: _input, cuda
options:
  _input:
    description: The driver version.
    type: str
    required: true
  cuda:
    description: The CUDA toolkit version.
    type: str
    required: true
  minor_version_compat:
    description: Judge by the major version's minor-version-compatibility floor.
    type: bool
    default: false
author:
  - mlinfra.mlhost developers (@mlinfra)
"""

EXAMPLES = r"""
- name: Refuse CUDA 12.4 on Debian 12's 535 driver
  ansible.builtin.assert:
    that: "'535.261.03' | mlinfra.mlhost.cuda_driver_compatible('12.4')"   # false
"""

RETURN = r"""
_value:
  description: Whether the driver can run the toolkit.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


def cuda_driver_compatible(driver, cuda, minor_version_compat=False):
    try:
        if not isinstance(minor_version_compat, bool):
            raise TypeError(f"argument minor_version_compat must be true or false, got {type(minor_version_compat).__name__} "
                            f"{minor_version_compat!r}")
        return _compat.cuda_driver_compatible(_compat.filter_text("driver", driver), _compat.filter_text("cuda", cuda), minor_version_compat)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"mlinfra.mlhost.cuda_driver_compatible: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"cuda_driver_compatible": cuda_driver_compatible}
