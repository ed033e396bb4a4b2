# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat


@pytest.mark.parametrize(
    "driver, cuda",
    [
        ("620.43", "13.4"), ("615.71.09", "13.4"), ("610.57.04", "13.3"), ("595.71.05", "13.2"), ("590.48.01", "13.1"),
        ("590.44.00", "13.0"), ("580.95.05", "13.0"), ("580.65.06", "13.0"), ("580.65.05", "12.9"), ("575.57.08", "12.9"),
        ("570.172.08", "12.8"), ("560.35.03", "12.6"), ("550.163.01", "12.4"), ("550.54.14", "12.4"),
        ("550.54.13", "12.3"), ("535.261.03", "12.2"), ("535.54.03", "12.2"), ("525.60.13", "12.0"),
        ("520.61.05", "11.8"), ("470.256.02", "11.4"), ("450.51.05", "11.0"), ("450.36.06", None), ("418.40", None),
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


@pytest.mark.parametrize(
    "cuda, driver",
    [
        ("11.0", "450.51.05"), ("11.8", "520.61.05"), ("12.2", "535.54.03"), ("12.2.2", "535.104.05"),
        ("12.4", "550.54.14"), ("12.4.1", "550.54.15"), ("12.8", "570.26"), ("12.8.1", "570.124.06"),
        ("13.0", "580.65.06"), ("13.1", "590.44.01"), ("13.2.1", "595.58.03"), ("13.3", "610.43.02"),
        ("13.4", "615"), ("13.4.1", "615"), ("13.4.2", "615"),   # 13.4's GA is 13.4.1; from 13.4 a branch, not a release
    ],
)
def test_cuda_min_driver(cuda, driver):
    assert _compat.cuda_min_driver(cuda) == driver


@pytest.mark.parametrize("cuda", ["12.7", "10.2", "12.4.9", "twelve", "12", "", "13.4.0", "13.1.2"])
def test_unknown_cuda_is_an_error(cuda):
    with pytest.raises(ValueError):
        _compat.cuda_min_driver(cuda)


@pytest.mark.parametrize(
    "driver, cuda, strict, relaxed",
    [
        ("535.261.03", "12.4", False, True),   # Debian 12's driver: no CUDA 12.4, but 12.x apps by minor-version compat
        ("550.163.01", "12.4", True, True),
        ("520.61.05", "12.0", False, False),
        ("470.256.02", "11.8", False, True),
        ("575.57.08", "13.0", False, False),
        ("610.57.04", "13.3", True, True),     # StackHPC's pair (CUDA 13.3.1 with 610.57.04)
        ("610.57.04", "13.4", False, True),    # 13.4 needs branch 615
        ("615.71.09", "13.4", True, True),
        ("620.43", "13.4.2", True, True),
    ],
)
def test_cuda_driver_compatible(driver, cuda, strict, relaxed):
    assert _compat.cuda_driver_compatible(driver, cuda) is strict
    assert _compat.cuda_driver_compatible(driver, cuda, minor_version_compat=True) is relaxed


def test_every_update_needs_at_least_its_ga_driver():
    for release, driver in _compat.CUDA_RELEASES.items():
        ga = _compat.CUDA_MIN_DRIVER[release.rsplit(".", 1)[0]]
        assert _compat.version_tuple(driver) >= _compat.version_tuple(ga), release


def test_torch_tags_are_real_cuda_releases():
    for tags in _compat.TORCH_CUDA_TAGS.values():
        for tag in tags:
            cuda = _compat.tag_cuda(tag)
            assert cuda in _compat.CUDA_MIN_DRIVER or cuda == "11.7", tag


@pytest.mark.parametrize("torch", ["2.13.0", "2.10.0", "3.0.0", "2.9.1"])
def test_no_driver_is_cpu_for_any_torch_release(torch):
    assert _compat.torch_cuda_tag(torch, None) == "cpu"
    assert _compat.torch_cuda_tag(torch, "") == "cpu"


def test_a_release_the_table_lacks_still_fails_with_a_driver_and_names_the_date():
    with pytest.raises(ValueError) as err:
        _compat.torch_cuda_tag("2.13.0", "12.8")
    assert _compat.TORCH_CUDA_TAGS_CHECKED in str(err.value)


def test_the_arch_floors_only_rise():
    """A later torch or a later CUDA never runs on older GPUs than an earlier one (the rules carry forward)."""
    for torch in ("2.7", "2.8", "2.9", "2.10", "2.11", "2.13"):
        floors = [_compat.torch_build_min_cc(torch, tag) for tag in ("cu118", "cu126", "cu128", "cu129", "cu130", "cu132")]
        assert floors == sorted(floors), torch
    assert set(_compat.ARCHITECTURE_MIN_CC) >= {"maxwell", "pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell"}
