# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The cuda_min_driver filter: the minimum NVIDIA driver for a CUDA toolkit release."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cuda_min_driver
version_added: 1.0.0
short_description: The minimum NVIDIA Linux driver for a CUDA toolkit release
description:
  - Arguments are strings, versions in ASCII digits (quote versions in YAML); anything else, a trailing newline
    included, fails naming the filter and the argument, never a guess.
  - Looks the toolkit up in NVIDIA's table (release notes, "CUDA Toolkit and Corresponding Driver Versions").
  - V(12.4) means the GA release (12.4.0); V(12.4.1) an update. An unknown version (there is no CUDA 12.7) is an error.
positional: _input
options:
  _input:
    description: The CUDA toolkit version, major.minor or major.minor.update.
    type: str
    required: true
author:
  - mlinfra.mlhost developers (@mlinfra)
"""

EXAMPLES = r"""
- name: Which driver does CUDA 12.4 need
  ansible.builtin.debug:
    msg: "{{ '12.4' | mlinfra.mlhost.cuda_min_driver }}"   # 550.54.14
"""

RETURN = r"""
_value:
  description: The minimum driver version.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


def cuda_min_driver(cuda):
    try:
        return _compat.cuda_min_driver(_compat.filter_text("cuda", cuda))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"mlinfra.mlhost.cuda_min_driver: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"cuda_min_driver": cuda_min_driver}
