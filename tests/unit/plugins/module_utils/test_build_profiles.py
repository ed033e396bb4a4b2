# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _build_profiles as bp

ALL = list(bp.PROFILES)


def distro(distro_id, version):
    return {"id": distro_id, "version": version, "major": version.split(".")[0]}


@pytest.mark.parametrize(
    "host, key",
    [
        (distro("debian", "12"), "debian12"), (distro("debian", "13"), "debian13"),
        (distro("ubuntu", "22.04"), "ubuntu22.04"), (distro("ubuntu", "24.04"), "ubuntu24.04"),
        (distro("rhel", "9.4"), "el9"), (distro("rocky", "8.10"), "el8"), (distro("almalinux", "10.0"), "el10"),
        (distro("centos", "9"), "el9"), (distro("ol", "9.4"), "el9"), (distro("fedora", "41"), "fedora"),
        (distro("debian", "11"), None), (distro("ubuntu", "20.04"), None), (distro("rhel", "7.9"), None),
        (distro("arch", "rolling"), None),
    ],
)
def test_table_key(host, key):
    assert bp.table_key(host) == key


@pytest.mark.parametrize(
    "key, profile, names",
    [
        ("debian12", "compilers", ["build-essential"]),
        ("debian13", "pkg_config", ["pkgconf"]),
        ("ubuntu22.04", "pkg_config", ["pkg-config"]),
        ("ubuntu24.04", "python_dev", ["python3-dev", "python3-venv"]),
        ("el9", "compilers", ["gcc", "gcc-c++", "make"]),
        ("el8", "python_dev", ["python39-devel"]),
        ("el9", "ssl_dev", ["openssl-devel"]),
        ("fedora", "pkg_config", ["pkgconf-pkg-config"]),
        ("debian12", "kernel_headers", ["linux-headers-{KERNEL}"]),
        ("el10", "kernel_headers", ["kernel-devel-{KERNEL}", "kernel-headers"]),
    ],
)
def test_names(key, profile, names):
    assert bp.TABLE[key][profile] == names


def test_every_distro_names_every_profile():
    for key, table in bp.TABLE.items():
        assert set(table) == set(bp.PROFILES), key
        assert all(table[p] for p in bp.PROFILES), key


def test_resolve_in_order_without_duplicates():
    names = bp.resolve(["compilers", "ssl_dev", "compilers", "kernel_headers"], distro("debian", "12"), "6.1.0-27-amd64")
    assert names == ["build-essential", "libssl-dev", "linux-headers-6.1.0-27-amd64"]


def test_resolve_rocky_kernel_devel():
    names = bp.resolve(["kernel_headers"], distro("rocky", "9.4"), "5.14.0-427.13.1.el9_4.x86_64")
    assert names == ["kernel-devel-5.14.0-427.13.1.el9_4.x86_64", "kernel-headers"]


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        bp.resolve(["compilers", "cuda_magic"], distro("debian", "12"), "6.1")
    assert "cuda_magic" in str(err.value)
    assert all(p in str(err.value) for p in bp.PROFILES)


def test_unsupported_distro_says_what_to_do():
    with pytest.raises(ValueError) as err:
        bp.resolve(["git"], distro("debian", "11"), "5.10")
    assert "debian 11" in str(err.value) and "extra_packages" in str(err.value) and "debian12" in str(err.value)


def test_kernel_headers_need_a_kernel():
    with pytest.raises(ValueError):
        bp.resolve(["kernel_headers"], distro("debian", "12"), None)


def test_no_profiles_resolve_to_nothing():
    assert bp.resolve([], {"id": None}, None) == []
