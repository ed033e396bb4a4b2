# SPDX-License-Identifier: GPL-3.0-or-later
"""The package layer: parsers on captured apt/dpkg output, and the exact commands each backend runs."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
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


# The queries the NVIDIA modules need (issue 14: the package layer owns packages) --------------------------


def test_installed_matching_reads_versions_and_holds_in_one_dpkg_query():
    argv = DPKG_QUERY + ("nvidia-*", "libcuda1", "linux-headers-6.1.0-28-amd64")
    runner = FakeRunner({argv: (1, fixture_text("dpkg/query-held-debian13.txt"), "")})
    found = _packages.Apt(runner).installed_matching(["nvidia-*", "libcuda1", "nvidia-smi", "linux-headers-6.1.0-28-amd64"])
    assert runner.calls == [list(argv)]  # nvidia-smi is matched by nvidia-* already: asked once
    assert found["nvidia-driver"] == ("550.163.01-2", True) and found["nvidia-kernel-dkms"] == ("550.163.01-2", False)
    assert "nvidia-open-kernel-dkms" not in found


def test_installed_matching_on_rpm_reads_versionlock_only_when_asked_and_something_matched():
    query = ("rpm", "-q", "-a", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", "nvidia-*")
    locks = ("dnf", "-q", "versionlock", "list")
    runner = FakeRunner({query: (0, "nvidia-driver\t3:550.54.14-1.el9\nnvidia-driver-cuda\t3:550.54.14-1.el9\n", ""),
                         locks: (0, "nvidia-driver-3:550.54.14-1.el9.*\n", "")})
    dnf = _packages.Dnf(runner)
    expected = {"nvidia-driver": ("3:550.54.14-1.el9", False), "nvidia-driver-cuda": ("3:550.54.14-1.el9", False)}
    assert dnf.installed_matching(["nvidia-*"]) == expected
    assert runner.calls == [list(query)]
    assert dnf.installed_matching(["nvidia-*"], holds=True)["nvidia-driver"] == ("3:550.54.14-1.el9", True)
    assert runner.calls[-1] == list(locks)
    empty = FakeRunner({query: (1, "package nvidia-* is not installed\n", "")})
    assert _packages.Dnf(empty).installed_matching(["nvidia-*"], holds=True) == {} and len(empty.calls) == 1


@pytest.mark.parametrize(
    "patterns, asked",
    [(["nvidia-*", "nvidia-smi", "libcuda1"], ["nvidia-*", "libcuda1"]),
     (["a", "a", "b*", "bc"], ["a", "b*"]),
     (["linux-headers-6.1", "libcuda1-*", "libcuda1"], ["linux-headers-6.1", "libcuda1-*", "libcuda1"])],
)
def test_query_patterns_ask_each_name_once(patterns, asked):
    assert _packages.query_patterns(patterns) == asked


def test_simulation_versions_from_captured_apt_output():
    versions = _packages.parse_apt_simulation_versions(fixture_text("apt/apt-get-simulate-debian12.out"))
    assert versions["perl-base"] == "5.36.0-7+deb12u4"  # an upgrade: the new version, not the bracketed old one
    assert versions["libgdbm6"] == "1.23-3"
    assert set(versions) == set(_packages.parse_apt_simulation(fixture_text("apt/apt-get-simulate-debian12.out")))


def test_apt_simulate_needs_package_lists(monkeypatch):
    runner = FakeRunner({})
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: None)
    assert _packages.Apt(runner).simulate(["nvidia-driver"]) is None and runner.calls == []
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 5.0)
    argv = APT_GET + ("-s", "--no-install-recommends", "install", "nvidia-driver")
    runner = FakeRunner({argv: (0, "Inst nvidia-driver (535.309.01-0+deb12u1 Debian:12/stable [amd64])\n", "")})
    assert _packages.Apt(runner).simulate(["nvidia-driver"]) == {"nvidia-driver": "535.309.01-0+deb12u1"}


def test_apt_space_from_assume_no():
    argv = ("apt-get", "-q", "--assume-no", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends", "install", "nvidia-cuda-toolkit")
    runner = FakeRunner({argv: (1, fixture_text("apt/assume-no-nvidia-debian12.txt"), "")})
    assert _packages.Apt(runner).space(["nvidia-cuda-toolkit"]) == (1_797_000_000, 6_350_000_000)
    assert _packages.Dnf(FakeRunner({})).space(["x"]) == (None, None)


def test_dnf_module_streams():
    reset = ("dnf", "-y", "-q", "module", "reset", "nvidia-driver")
    enable = ("dnf", "-y", "-q", "module", "enable", "nvidia-driver:550-dkms")
    runner = FakeRunner({reset: (1, "", "no such module"), enable: (0, "", "")})
    _packages.Dnf(runner).enable_module_stream("nvidia-driver:550-dkms")
    assert runner.calls == [list(reset), list(enable)]
    listing = ("Name           Stream          Profiles   Summary\n"
               "nvidia-driver  550-dkms [e]    default    Nvidia driver for 550-dkms branch\n")
    runner = FakeRunner({("dnf", "-q", "module", "list", "--enabled", "nvidia-driver"): (0, listing, "")})
    assert _packages.Dnf(runner).enabled_streams("nvidia-driver") == {"nvidia-driver:550-dkms"}
    with pytest.raises(ModuleError, match="has no module streams"):
        _packages.Apt(FakeRunner({})).enable_module_stream("nvidia-driver:550-dkms")


@pytest.mark.parametrize(
    "option, family, backend",
    [("auto", "debian", "apt"), ("auto", "redhat", "dnf"), ("dnf", "debian", "dnf"), ("apt", "redhat", "apt")],
)
def test_backend_for_the_option_and_the_host(option, family, backend, tmp_path):
    distro = {"id": "x", "family": family, "major": "9", "name": "X"}
    pm = _packages.backend_for(option, distro, Sysroot(str(tmp_path)), FakeRunner({}), lock_timeout=7)
    assert pm.name == backend and pm.lock_timeout == 7


def test_backend_for_refuses_a_host_without_apt_or_dnf(tmp_path):
    runner = FakeRunner({})
    with pytest.raises(ModuleError) as info:
        _packages.backend_for("auto", {"id": "alpine", "name": "Alpine Linux"}, Sysroot(str(tmp_path)), runner, module="nvidia_driver")
    assert info.value.msg == ("No supported package manager on Alpine Linux (found none): nvidia_driver supports apt and dnf; "
                              "set pkg_mgr if detection is wrong. Nothing was changed.")
    assert runner.calls == []


# NVIDIA's driver on dnf: module streams, every version offered, the transaction dnf would run ----------------------
RQ_ALL = ("dnf", "-q", "repoquery", "--qf", "%{name}\\t%{epoch}:%{version}-%{release}\\n")


def test_module_streams_captured_with_streams_up_to_580():
    """Real dnf 4.14 against the stand-in tree: the repository header, the column titles and the hint are no streams."""
    text = fixture_text("dnf/nvidia-rhel9-module-list.txt")
    assert _packages.parse_dnf_module_streams(text, "nvidia-driver") == {"latest-dkms", "open-dkms", "580-dkms", "580-open"}
    runner = FakeRunner({("dnf", "-q", "module", "list", "nvidia-driver"): (0, text, "")})
    assert "590-open" not in _packages.Dnf(runner).module_streams("nvidia-driver")


def test_module_streams_enabled_markers_and_hostile_lists():
    enabled = "nvidia-driver 580-open [e] default  Nvidia driver\nnvidia-driver open-dkms[d][e] default x\n"
    assert _packages.parse_dnf_module_streams(enabled, "nvidia-driver") == {"580-open", "open-dkms"}
    assert _packages.parse_dnf_module_streams(fixture_text("dnf/nvidia-module-list-no-streams.txt"), "nvidia-driver") == set()
    assert _packages.parse_dnf_module_streams("", "nvidia-driver") == set()
    assert _packages.parse_dnf_module_streams("nvidia-driver [e]\nnvidia-driver-x 590-open\nnvidia-driver $(id) x\n",
                                              "nvidia-driver") == set()


def test_a_repository_without_modules_offers_no_stream_and_other_failures_are_errors():
    none = (1, "", fixture_text("dnf/nvidia-module-list-none.err"))  # real: rc 1, "Error: No matching Modules to list"
    assert _packages.Dnf(FakeRunner({("dnf", "-q", "module", "list", "nvidia-driver"): none})).module_streams("nvidia-driver") == set()
    broken = FakeRunner({("dnf", "-q", "module", "list", "nvidia-driver"): (1, "", "Error: Failed to download metadata for repo 'cuda'")})
    with pytest.raises(_packages.PackageError, match="dnf module list failed.*Failed to download metadata"):
        _packages.Dnf(broken).module_streams("nvidia-driver")
    with pytest.raises(_packages.PackageError, match="dnf is not on this host"):
        _packages.Dnf(FakeRunner({("dnf", "-q", "module", "list", "nvidia-driver"): None})).module_streams("nvidia-driver")


def test_versions_captured_after_the_streams_end():
    """Real dnf 4 prints a blank line after each --qf line ending in \\n: every version of each name, once."""
    names = ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"]
    runner = FakeRunner({RQ_ALL + tuple(names): (0, fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt"), "")})
    got = _packages.Dnf(runner).versions(names)
    assert got["nvidia-driver"] == ["3:590.48.01-1.el9", "3:595.45.04-1.el9", "3:595.71.05-1.el9"]
    assert set(got) == set(names)
    assert _packages.Dnf(FakeRunner({})).versions([]) == {}


def test_versions_skip_hostile_lines():
    got = _packages.parse_dnf_versions(fixture_text("dnf/nvidia-hostile-repoquery.txt"), ["nvidia-open"])
    assert got == {"nvidia-open": ["3:595.71.05-1.el9"]}
    assert _packages.parse_dnf_versions("", ["nvidia-open"]) == {}


def test_simulate_reads_the_captured_transaction_including_dependencies():
    """Real dnf 4: nvidia-open-590.48.01 alone pulls 595 components (NVIDIA's metas require them '>=')."""
    argv = ("dnf", "--assumeno", "--setopt=install_weak_deps=False", "install", "nvidia-open-590.48.01-1.el9")
    runner = FakeRunner({argv: (1, fixture_text("dnf/nvidia-nonmodular-assumeno-590-meta.txt"), "Operation aborted.\n")})
    assert _packages.Dnf(runner).simulate(["nvidia-open-590.48.01-1.el9"]) == {
        "nvidia-open": "3:590.48.01-1.el9", "kmod-nvidia-open-dkms": "3:595.71.05-1.el9",
        "nvidia-driver": "3:595.71.05-1.el9", "nvidia-driver-cuda": "3:595.71.05-1.el9"}


def test_simulate_reads_dnf5_tables_and_wrapped_names_and_says_none_when_dnf_refused():
    dnf5 = _packages.parse_dnf_transaction(fixture_text("dnf/nvidia-fedora41-assumeno-590-meta.txt"))
    assert dnf5["nvidia-open"] == "3:590.48.01-1.fc41" and dnf5["nvidia-driver-cuda-libs"] == "3:595.71.05-1.fc41"
    assert len(dnf5) == 5
    wrapped = ("Installing:\n nvidia-driver-cuda-libs-with-a-very-long-name\n                  x86_64  3:590.48.01-1.el9  cuda  1 M\n"
               "Removing:\n nvidia-driver  x86_64  3:580.105.08-1.el9  @System  1 M\n")
    assert _packages.parse_dnf_transaction(wrapped) == {"nvidia-driver-cuda-libs-with-a-very-long-name": "3:590.48.01-1.el9"}
    argv = ("dnf", "--assumeno", "--setopt=install_weak_deps=False", "install", "does-not-exist-xyz")
    runner = FakeRunner({argv: (1, fixture_text("dnf/assumeno-missing.txt"), fixture_text("dnf/assumeno-missing.err"))})
    assert _packages.Dnf(runner).simulate(["does-not-exist-xyz"]) is None
    assert _packages.parse_dnf_transaction("<html>502</html>\n") == {}
