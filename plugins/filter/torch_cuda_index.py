# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The torch_cuda_index filter: PyTorch's CUDA wheel tag for a torch release and a CUDA level."""

from __future__ import annotations

DOCUMENTATION = r"""
name: torch_cuda_index
version_added: 1.0.0
short_description: The PyTorch wheel index tag (cu124, cpu, ...) for a torch release on a given CUDA level
description:
  - Arguments are strings, versions in ASCII digits (quote versions in YAML); anything else, a trailing newline
    included, fails naming the filter and the argument, never a guess.
  - The newest CUDA wheel tag published for the torch release whose CUDA version is not above the given one
    (the highest CUDA the host's driver supports, C(ansible_facts.mlhost.nvidia.cuda_driver_api)).
  - V(cpu) when the CUDA version is empty (no driver), for any torch release, or when no tag fits.
  - With a CUDA version, a torch release the table does not know is an error. The table is current as of torch 2.9
    (see docs/compatibility.md); the python_env module reads the builds from PyTorch's index instead.
positional: _input, cuda_version
options:
  _input:
    description: The torch version.
    type: str
    required: true
  cuda_version:
    description: The highest CUDA version the driver supports, or empty for none.
    type: str
    required: true
author:
  - mlinfra.mlhost developers (@mlinfra)
"""

EXAMPLES = r"""
- name: The wheel index for torch 2.5.1 on this host
  ansible.builtin.debug:
    msg: "https://download.pytorch.org/whl/{{ '2.5.1' | mlinfra.mlhost.torch_cuda_index(ansible_facts.mlhost.nvidia.cuda_driver_api) }}"
"""

RETURN = r"""
_value:
  description: The wheel tag, such as cu124 or cpu.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


def torch_cuda_index(torch_version, cuda_version):
    try:
        return _compat.torch_cuda_tag(_compat.filter_text("torch_version", torch_version), _compat.filter_text("cuda_version", cuda_version, optional=True))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"mlinfra.mlhost.torch_cuda_index: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"torch_cuda_index": torch_cuda_index}
