# SPDX-License-Identifier: GPL-3.0-or-later
"""conda's version order, version specs and match specs, as tables.

The expected values were cross-checked against py-rattler 0.28.0's Version,
VersionSpec and MatchSpec (which follow conda's rules) when these tables were
written; py-rattler itself is not needed to run them.
"""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils._conda_spec import MatchSpec, SpecError, Version, VersionSpec, dependency_name

# Ascending, each strictly below the next (conda's VersionOrder documentation order, and more).
ORDERED = ["0.4", "0.4.1.rc", "0.4.1", "0.5a1", "0.5b3", "0.5C1", "0.5", "0.9.6", "0.960923", "1.0", "1.1dev1", "1.1a1",
           "1.1.0dev1", "1.1.a1", "1.1.0rc1", "1.1.0", "1.1.0post1", "1.1post1", "1996.07.12", "1!0.4.1", "1!3.1.1.6", "2!0.4.1"]


@pytest.mark.parametrize("low,high", list(zip(ORDERED, ORDERED[1:])))
def test_version_order(low, high):
    assert Version(low) < Version(high)
    assert Version(high) > Version(low)


@pytest.mark.parametrize("a,b", [("1.0", "1.0.0"), ("1.1.a1", "1.1.0a1"), ("1.0A1", "1.0a1"), ("1.0-1", "1.0_1"), ("0.4.1", "0!0.4.1")])
def test_equal_versions(a, b):
    assert Version(a) == Version(b)


@pytest.mark.parametrize("bad", ["", "1..2", ".1", "1.", "1+a+b", "a b", "1.0$"])
def test_invalid_versions(bad):
    with pytest.raises(SpecError):
        Version(bad)


VERSION_SPECS = [
    # spec, matching, not matching
    ("==1.2", ["1.2", "1.2.0"], ["1.2.1", "1.20"]),
    ("1.2", ["1.2", "1.2.0"], ["1.2.3"]),
    ("1.2.*", ["1.2", "1.2.0", "1.2.3", "1.2.3a"], ["1.20", "1.3", "1.1"]),
    ("1.2*", ["1.2.3"], ["1.20"]),
    (">=1.2", ["1.2", "2.0", "1.20"], ["1.1", "1.2a1", "1.2dev"]),
    (">1.2", ["1.2.1"], ["1.2", "1.2.0"]),
    ("<1.2", ["1.1", "1.2a1", "1.2dev"], ["1.2", "1.3"]),
    ("<=1.2", ["1.2.0"], ["1.2.1"]),
    ("!=1.2", ["1.2.1"], ["1.2.0"]),
    ("!=1.2.*", ["1.3", "1.20"], ["1.2.5"]),
    (">=1.0,<2", ["1.0", "1.99"], ["2.0", "0.9", "2!1.0"]),
    ("1.0|2.0", ["1.0", "2.0.0"], ["1.5"]),
    (">=1.2,<1.3|2.0", ["1.2.5", "2.0"], ["1.3", "2.1"]),
    ("(1.0|1.1),>=1.0.0", ["1.0", "1.1"], ["1.2"]),
    ("~=1.2", ["1.2", "1.9"], ["2.0", "1.1"]),
    ("~=1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    (">=1.2.*", ["1.2", "1.3"], ["1.1"]),
    ("*", ["0.1", "2!3"], []),
    ("1.*.3", ["1.2.3", "1.20.3"], ["1.2.4"]),
    ("<1.0.post1", ["1.0"], ["1.0.post1", "1.1"]),
    ("2024.1.*", ["2024.1.15"], ["2024.10.1"]),
]


@pytest.mark.parametrize("spec,good,bad", VERSION_SPECS, ids=[s[0] for s in VERSION_SPECS])
def test_version_specs(spec, good, bad):
    vs = VersionSpec(spec)
    for version in good:
        assert vs.contains(version), f"{spec} should match {version}"
    for version in bad:
        assert not vs.contains(version), f"{spec} should not match {version}"


@pytest.mark.parametrize("bad", ["(1.0", "1.0)", ">=", "1.0,,2", "|1.0", ">=<1"])
def test_invalid_version_specs(bad):
    with pytest.raises(SpecError):
        VersionSpec(bad)


MATCH_SPECS = [
    # text, name, version spec (None = any), build, channel
    ("numpy", "numpy", None, None, None),
    ("numpy 1.2.*", "numpy", "1.2.*", None, None),
    ("numpy >=1,<2 py311*", "numpy", ">=1,<2", "py311*", None),
    ("numpy=1.2", "numpy", "1.2.*", None, None),
    ("numpy==1.2", "numpy", "==1.2", None, None),
    ("numpy=1.2=py_0", "numpy", "1.2", "py_0", None),
    ("numpy>=1.2", "numpy", ">=1.2", None, None),
    ("numpy >= 1.2", "numpy", ">=1.2", None, None),
    ("conda-forge::numpy >=1.2", "numpy", ">=1.2", None, "conda-forge"),
    ("numpy[version='>=1.2', build=py*]", "numpy", ">=1.2", "py*", None),
    ("numpy 1.2|1.3", "numpy", "1.2|1.3", None, None),
    ("numpy=1.2,<1.2.5", "numpy", "1.2.*,<1.2.5", None, None),
    ("PyYAML", "pyyaml", None, None, None),
    ("python=3.11  # pinned", "python", "3.11.*", None, None),
]


@pytest.mark.parametrize("text,name,version,build,channel", MATCH_SPECS, ids=[m[0] for m in MATCH_SPECS])
def test_match_spec_forms(text, name, version, build, channel):
    ms = MatchSpec(text)
    assert (ms.name, str(ms.version) if ms.version else None, ms.build, ms.channel) == (name, version, build, channel)


@pytest.mark.parametrize("text,record,expected", [
    ("numpy=1.26", {"name": "numpy", "version": "1.26.4", "build": "py311h_0"}, True),
    ("numpy=1.26", {"name": "numpy", "version": "1.2.6", "build": "0"}, False),
    ("numpy 1.26.4 py311*", {"name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0"}, True),
    ("numpy 1.26.4 py312*", {"name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0"}, False),
    ("numpy[build_number=3]", {"name": "numpy", "version": "1", "build": "x_3", "build_number": 3}, True),
    ("numpy[build_number=3]", {"name": "numpy", "version": "1", "build": "x_2", "build_number": 2}, False),
    ("scipy", {"name": "numpy", "version": "1"}, False),
    ("python >=3.10", {"name": "python", "version": "3.9.18"}, False),
])
def test_match_spec_against_records(text, record, expected):
    assert MatchSpec(text).matches(record) is expected


@pytest.mark.parametrize("bad", ["", ">=1.2", "numpy 1.2 py_0 extra", "numpy[build_number=x]"])
def test_invalid_match_specs(bad):
    with pytest.raises(SpecError):
        MatchSpec(bad)


@pytest.mark.parametrize("dep,name", [("python >=3.9", "python"), ("libgcc-ng>=12", "libgcc-ng"), ("conda-forge::zlib", "zlib"), ("__glibc >=2.17", "__glibc")])
def test_dependency_name(dep, name):
    assert dependency_name(dep) == name
