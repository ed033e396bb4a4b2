# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Compatibility filters: CUDA toolkit vs NVIDIA driver, and PyTorch's CUDA wheel tags."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


def _wrap(func):
    def filtered(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise AnsibleFilterError(f"mlinfra.mlhost.{func.__name__}: {exc}") from exc

    filtered.__name__ = func.__name__
    return filtered


def cuda_min_driver(cuda):
    return _compat.cuda_min_driver(str(cuda))


def cuda_driver_compatible(driver, cuda, minor_version_compat=False):
    return _compat.cuda_driver_compatible(str(driver), str(cuda), bool(minor_version_compat))


def torch_cuda_index(torch_version, cuda_version):
    return _compat.torch_cuda_tag(str(torch_version), str(cuda_version) if cuda_version else None)


class FilterModule:
    def filters(self):
        return {f.__name__: _wrap(f) for f in (cuda_min_driver, cuda_driver_compatible, torch_cuda_index)}
