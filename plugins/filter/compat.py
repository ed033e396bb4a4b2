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


def _text(name, value, optional=False):
    """A filter argument that must be a string (None or '' allowed when ``optional``): no str() of anything."""
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"argument {name} must be a string{' or none' if optional else ''}, got {type(value).__name__} {value!r}"
            + (f": quote versions in YAML ('{value}', not {value})" if isinstance(value, (int, float)) and not isinstance(value, bool) else "")
        )
    return value


def cuda_min_driver(cuda):
    return _compat.cuda_min_driver(_text("cuda", cuda))


def cuda_driver_compatible(driver, cuda, minor_version_compat=False):
    if not isinstance(minor_version_compat, bool):
        raise TypeError(f"argument minor_version_compat must be true or false, got {type(minor_version_compat).__name__} "
                        f"{minor_version_compat!r}")
    return _compat.cuda_driver_compatible(_text("driver", driver), _text("cuda", cuda), minor_version_compat)


def torch_cuda_index(torch_version, cuda_version):
    return _compat.torch_cuda_tag(_text("torch_version", torch_version), _text("cuda_version", cuda_version, optional=True))


class FilterModule:
    def filters(self):
        return {f.__name__: _wrap(f) for f in (cuda_min_driver, cuda_driver_compatible, torch_cuda_index)}
