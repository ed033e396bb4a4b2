# SPDX-License-Identifier: GPL-3.0-or-later
"""The package layer: parsers on captured apt/dpkg output, and the exact commands each backend runs."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _packages
from mlhost_testlib import FakeRunner, captured, fixture_text

DPKG_QUERY = ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n")
APT_GET = ("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300")


def test_dpkg_query_captured_on_debian12():
    rc, out, err = captured("apt/dpkg-query-debian12")
    assert rc == 1  # dpkg-query exits 1 when some names are unknown, and still prints the known ones
    state = _packages.parse_dpkg_query(out, {"bash": None, "build-essential": None, "cmake": None, "nosuchpkg": None})
    assert state == {"bash": "5.2.15-2+b13", "build-essential": None, "cmake": None, "nosuchpkg": None}


def test_dpkg_query_ignores_removed_and_half_installed():
    text = "a\tii \t1.0\nb\trc \t2.0\nc\tiU \t3.0\nd:amd64\tii \t4.0\n"
    state = _packages.parse_dpkg_query(text, {"a": None, "b": None, "c": None, "d": None})
    assert state == {"a": "1.0", "b": None, "c": None, "d": "4.0"}


def test_apt_policy_captured_on_debian12():
    assert _packages.parse_apt_policy(fixture_text("apt/apt-cache-policy-debian12.out")) == {"build-essential", "tree"}


def test_apt_policy_virtual_package_has_no_candidate():
    text = "awk:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n"
    assert _packages.parse_apt_policy(text) == set()


def test_apt_simulation_captured_on_debian12():
    plan = _packages.parse_apt_simulation(fixture_text("apt/apt-get-simulate-debian12.out"))
    assert {"build-essential", "cmake", "gcc-12", "g++-12", "make", "libc6-dev"} <= set(plan)
    assert len(plan) == len(set(plan)) > 40


def test_update_failures_captured_dead_mirror():
    rc, out, err = captured("apt/apt-get-update-dead-mirror")
    assert rc == 0  # apt-get update only warns when a source is unreachable
    assert _packages.update_failures(err, out) == [
        "http://127.0.0.1:9/debian stable InRelease: Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"
    ]
    assert _packages.update_failures(err) == [
        "http://127.0.0.1:9/debian/dists/stable/InRelease Could not connect to 127.0.0.1:9 (127.0.0.1). "
        "- connect (111: Connection refused)"
    ]
    # A source that failed once and then answered leaves an Err line but no warning: not a failure.
    assert _packages.update_failures("", "Err:1 http://x stable InRelease\n  Temporary failure\n") == []
    assert _packages.update_failures("") == []
    assert _packages.update_failures("W: Some index files failed to download. They have been ignored\n") == [
        "some index files failed to download"
    ]


def test_apt_refresh_fails_on_unreachable_source(tmp_path, monkeypatch):
    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    runner = FakeRunner({APT_GET + ("update",): captured("apt/apt-get-update-dead-mirror")})
    apt = _packages.Apt(runner)
    with pytest.raises(_packages.PackageError) as err:
        apt.refresh(3600, force=True)
    assert "127.0.0.1:9" in err.value.msg and "nothing was installed" in err.value.msg
    assert not (tmp_path / "stamp").exists()


def test_apt_cache_age(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.setattr(_packages, "APT_LISTS", str(lists))
    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    apt = _packages.Apt(FakeRunner({}))
    assert apt.cache_age() is None  # never updated: no Packages files
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").write_text("x")
    assert 0 <= apt.cache_age() < 60
    assert apt.refresh(3600) is False and apt.runner.calls == []


def test_apt_install_command():
    names = ["build-essential", "cmake"]
    argv = APT_GET + ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                      "--no-install-recommends", "install", "build-essential", "cmake")
    runner = FakeRunner({argv: (0, "", "")})
    _packages.Apt(runner).install(names)
    assert runner.calls == [list(argv)]


def test_apt_install_failure_names_the_cause():
    argv = APT_GET + ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "install", "x")
    runner = FakeRunner({argv: (100, "", "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42\n")})
    with pytest.raises(_packages.PackageError) as err:
        _packages.Apt(runner, install_recommends=True).install(["x"])
    assert "rc=100" in err.value.msg and "held by process 42" in err.value.msg


def test_apt_holds():
    runner = FakeRunner({
        ("apt-mark", "showhold"): (0, "nvidia-driver\nlibcuda1:amd64\n", ""),
        ("apt-mark", "hold", "a", "b"): (0, "a set on hold.\nb set on hold.\n", ""),
        ("apt-mark", "unhold", "a"): (0, "Canceled hold on a.\n", ""),
    })
    apt = _packages.Apt(runner)
    assert apt.held() == {"nvidia-driver", "libcuda1"}
    apt.hold(["a", "b"])
    apt.unhold(["a"])


@pytest.mark.parametrize(
    "text, names, expected",
    [
        ("gcc\t0:11.4.1-3.el9\nno package provides cmake\n", ["gcc", "cmake"], {"gcc": "0:11.4.1-3.el9", "cmake": None}),
        ("curl-minimal\t0:7.76.1-29.el9\n", ["curl"], {"curl": "0:7.76.1-29.el9"}),
    ],
)
def test_rpm_whatprovides(text, names, expected):
    assert _packages.parse_rpm_whatprovides(text, names, {n: None for n in names}) == expected


def test_dnf_installed_command():
    argv = ("rpm", "-q", "--whatprovides", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", "gcc", "make")
    runner = FakeRunner({argv: (1, "gcc\t0:11.4.1-3.el9\nno package provides make\n", "")})
    assert _packages.Dnf(runner).installed(["gcc", "make"]) == {"gcc": "0:11.4.1-3.el9", "make": None}


def test_versionlock_list():
    text = "Last metadata expiration check: 0:00:01 ago.\nnvidia-driver-3:550.54.14-1.el9.*\nkmod-nvidia-latest-dkms-3:550.54.14-1.el9.*\n"
    assert _packages.parse_versionlock_list(text) == {"nvidia-driver", "kmod-nvidia-latest-dkms"}


def test_backend_choice():
    assert isinstance(_packages.backend("apt", FakeRunner({})), _packages.Apt)
    assert isinstance(_packages.backend("dnf", FakeRunner({})), _packages.Dnf)
    with pytest.raises(_packages.PackageError):
        _packages.backend("zypper", FakeRunner({}))


def test_rpm_q_captured_on_debian_dnf_testbed():
    """rpm -q output captured in the build_tools_dnf test bed (Debian 12, rpm 4.18)."""
    text = fixture_text("dnf/rpm-q.txt")
    names = ["mlhost-test-hello", "mlhost-test-devel", "nosuchpkg"]
    state = _packages.parse_rpm_whatprovides(text, names, {n: None for n in names})
    assert state == {"mlhost-test-hello": "0:1.0-1", "mlhost-test-devel": "0:1.0-1", "nosuchpkg": None}


def test_versionlock_list_captured_on_debian_dnf_testbed():
    assert _packages.parse_versionlock_list(fixture_text("dnf/versionlock-list.txt")) == {"mlhost-test-hello"}


def test_dnf_install_missing_package_message_is_kept():
    runner = FakeRunner({
        ("dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install", "does-not-exist"):
            (1, "", fixture_text("dnf/install-missing.txt")),
    })
    with pytest.raises(_packages.PackageError) as err:
        _packages.Dnf(runner).install(["does-not-exist"])
    assert "Unable to find a match: does-not-exist" in err.value.msg and "rc=1" in err.value.msg
