# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


@pytest.mark.parametrize(
    "driver, cuda",
    [
        ("580.95.05", "13.0"), ("580.65.06", "13.0"), ("580.65.05", "12.9"), ("575.57.08", "12.9"),
        ("570.172.08", "12.8"), ("560.35.03", "12.6"), ("550.163.01", "12.4"), ("550.54.14", "12.4"),
        ("550.54.13", "12.3"), ("535.261.03", "12.2"), ("535.54.03", "12.2"), ("525.60.13", "12.0"),
        ("520.61.05", "11.8"), ("470.256.02", "11.4"), ("450.36.06", "11.0"), ("418.40", None),
        ("not-a-version", None), ("", None),
    ],
)
def test_max_cuda_for_driver(driver, cuda):
    assert _compat.max_cuda_for_driver(driver) == cuda


def test_table_is_monotonic():
    ordered = sorted(_compat.CUDA_MIN_DRIVER, key=_compat.version_tuple)
    drivers = [_compat.version_tuple(_compat.CUDA_MIN_DRIVER[c]) for c in ordered]
    assert drivers == sorted(drivers)


def test_there_is_no_cuda_12_7():
    assert "12.7" not in _compat.CUDA_MIN_DRIVER


def test_version_tuple_rejects_garbage():
    with pytest.raises(ValueError):
        _compat.version_tuple("12.x")
