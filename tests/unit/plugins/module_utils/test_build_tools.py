# SPDX-License-Identifier: GPL-3.0-or-later
"""build_tools' worker with apt: plan, then apply, through the exact commands it runs (the one door faked)."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _build_tools, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, captured, fixture_text, make_host, run_worker

DPKG_QUERY = ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n")
APT_GET = ("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300")
INSTALL = APT_GET + ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "--no-install-recommends", "install")


def run(params, runner, check_mode=False, root=None):
    """The module's result for ``params`` (plan, then apply unless check mode)."""
    return run_worker(_build_tools.BuildTools, make_host(params, runner, check_mode=check_mode, sysroot=root))


def params(**overrides):
    base = {"profiles": ["compilers", "cmake"], "extra_packages": [], "state": "present", "pkg_mgr": "auto",
            "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300, "install_recommends": False}
    base.update(overrides)
    return base


@pytest.fixture
def debian12(tree, tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.setattr(_packages, "APT_LISTS", str(lists))
    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    return Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12")}))), lists


WITH_LISTS = {
    DPKG_QUERY + ("build-essential", "cmake"): captured("apt/dpkg-query-debian12"),
    ("apt-cache", "policy", "build-essential", "cmake"): (0, "build-essential:\n  Candidate: 12.9\ncmake:\n  Candidate: 3.25.1-1\n", ""),
    APT_GET + ("-s", "--no-install-recommends", "install", "build-essential", "cmake"): (0, fixture_text("apt/apt-get-simulate-debian12.out"), ""),
}


def fresh_lists(lists):
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("x")


def test_all_installed_is_one_query_and_no_change(debian12):
    root, lists = debian12
    runner = FakeRunner({DPKG_QUERY + ("build-essential", "cmake"): (0, "build-essential\tii \t12.9\ncmake\tii \t3.25.1-1\n", "")})
    result = run(params(), runner, check_mode=False, root=root)
    assert result["changed"] is False and result["installed"] == [] and result["cache_updated"] is False
    assert runner.calls == [list(DPKG_QUERY + ("build-essential", "cmake"))]


def test_install_on_a_fresh_host_refreshes_checks_and_installs(debian12):
    root, lists = debian12
    query = DPKG_QUERY + ("build-essential", "cmake")
    responses = {
        query: captured("apt/dpkg-query-debian12"),
        APT_GET + ("update",): (0, "Reading package lists...\n", ""),
        ("apt-cache", "policy", "build-essential", "cmake"): (0, "build-essential:\n  Candidate: 12.9\ncmake:\n  Candidate: 3.25.1-1\n", ""),
        APT_GET + ("-s", "--no-install-recommends", "install", "build-essential", "cmake"): (0, fixture_text("apt/apt-get-simulate-debian12.out"), ""),
        INSTALL + ("build-essential", "cmake"): (0, "", ""),
    }
    runner = FakeRunner(responses)

    def after_install(argv, check=True, data=None, timeout=None, env=None, cwd=None):
        if tuple(argv) == INSTALL + ("build-essential", "cmake"):
            runner.responses[query] = (0, "build-essential\tii \t12.9\ncmake\tii \t3.25.1-1\n", "")
        if tuple(argv) == APT_GET + ("update",):
            fresh_lists(lists)
        return FakeRunner.run(runner, argv, check, data, timeout, env, cwd)

    runner.run = after_install
    result = run(params(), runner, check_mode=False, root=root)
    assert result["changed"] is True and result["installed"] == ["build-essential", "cmake"]
    assert result["cache_updated"] is True
    # No lists when the plan was made: the plan is the missing packages, as check mode reports it.
    assert result["plan"] == ["build-essential", "cmake"]
    assert result["versions"] == {"build-essential": "12.9", "cmake": "3.25.1-1"}
    assert [c[0] for c in runner.calls] == ["dpkg-query", "apt-get", "apt-cache", "apt-get", "dpkg-query"]
    assert runner.calls[1] == list(APT_GET + ("update",)) and runner.calls[3] == list(INSTALL + ("build-essential", "cmake"))
    assert "build-essential: absent" in result["diff"]["before"] and "build-essential: 12.9" in result["diff"]["after"]


def test_check_mode_on_a_host_never_updated_changes_nothing(debian12):
    root, lists = debian12
    runner = FakeRunner({DPKG_QUERY + ("build-essential", "cmake"): captured("apt/dpkg-query-debian12")})
    result = run(params(), runner, check_mode=True, root=root)
    assert result["changed"] is True and result["installed"] == ["build-essential", "cmake"]
    assert result["plan"] == ["build-essential", "cmake"]  # no lists yet: dependencies cannot be resolved
    assert result["cache_updated"] is False
    assert [c[0] for c in runner.calls] == ["dpkg-query"]


def test_check_mode_with_lists_shows_the_full_plan(debian12):
    root, lists = debian12
    fresh_lists(lists)
    runner = FakeRunner(WITH_LISTS)
    result = run(params(), runner, check_mode=True, root=root)
    assert "libc6-dev" in result["plan"] and result["diff"]["prepared"].startswith("apt install: perl-base ")
    assert result["diff"]["prepared"] == "apt install: " + " ".join(result["plan"]) and " build-essential " in result["diff"]["prepared"]
    assert result["versions"] == {"build-essential": "12.9", "cmake": "3.25.1-1"}  # the candidates
    assert "would" not in repr(result)
    assert [c[0] for c in runner.calls] == ["dpkg-query", "apt-cache", "apt-get"]


def test_check_mode_reports_what_the_real_run_does(debian12):
    """Same changed, packages, installed, removed and plan in check mode and in the real run."""
    root, lists = debian12
    fresh_lists(lists)
    checked = run(params(), FakeRunner(WITH_LISTS), check_mode=True, root=root)
    runner = FakeRunner({**WITH_LISTS, INSTALL + ("build-essential", "cmake"): (0, "", "")})
    real_run = runner.run

    def after_install(argv, check=True, data=None, timeout=None, env=None, cwd=None):
        if tuple(argv) == INSTALL + ("build-essential", "cmake"):
            runner.responses[DPKG_QUERY + ("build-essential", "cmake")] = (0, "build-essential\tii \t12.9\ncmake\tii \t3.25.1-1\n", "")
        return real_run(argv, check, data, timeout, env, cwd)

    runner.run = after_install
    real = run(params(), runner, check_mode=False, root=root)
    for key in ("changed", "packages", "installed", "removed", "plan", "pkg_mgr", "versions", "diff"):
        assert checked[key] == real[key], key
    assert checked["changed"] is True and "gcc-12" in real["plan"]
    assert real["commands"][:3] == checked["commands"]
    # The lists were fresh and carried everything: no refresh, no second availability query.
    assert [c[0] for c in runner.calls] == ["dpkg-query", "apt-cache", "apt-get", "apt-get", "dpkg-query"]


def test_missing_package_fails_naming_it_and_installs_nothing(debian12):
    root, lists = debian12
    fresh_lists(lists)
    query = DPKG_QUERY + ("tree", "mlhost-no-such-package")
    runner = FakeRunner({
        query: (1, "", "dpkg-query: no packages found matching tree\n"),
        ("apt-cache", "policy", "tree", "mlhost-no-such-package"): (0, fixture_text("apt/apt-cache-policy-debian12.out"), ""),
        APT_GET + ("update",): (0, "", ""),
    })
    with pytest.raises(ModuleError) as err:
        run(params(profiles=[], extra_packages=["tree", "mlhost-no-such-package"]), runner, False, root)
    assert "mlhost-no-such-package" in err.value.msg and "Nothing was installed" in err.value.msg
    assert "tree," not in err.value.msg
    # The lists were fresh, so they were refreshed once (forced) before calling the package missing.
    assert [c[:6] for c in runner.calls if c[0] == "apt-get"] == [list(APT_GET + ("update",))]
    assert not [c for c in runner.calls if "install" in c]


def test_kernel_headers_not_carried(debian12, monkeypatch):
    root, lists = debian12
    fresh_lists(lists)
    monkeypatch.setattr(_build_tools.platform, "release", lambda: "6.1.0-18-amd64")
    name = "linux-headers-6.1.0-18-amd64"
    runner = FakeRunner({
        DPKG_QUERY + (name,): (1, "", ""),
        ("apt-cache", "policy", name): (0, "", ""),
        APT_GET + ("update",): (0, "", ""),
    })
    with pytest.raises(ModuleError) as err:
        run(params(profiles=["kernel_headers"]), runner, False, root)
    assert "6.1.0-18-amd64" in err.value.msg and "no longer carried" in err.value.msg and "reboot" in err.value.msg


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"extra_packages": ["ok", "rm -rf /"]}, "invalid package names"),
        ({"extra_packages": [""]}, "invalid package names"),
        ({"cache_valid_time": -1}, "cache_valid_time must be a whole number of seconds from 0"),
        ({"profiles": [], "extra_packages": []}, "Nothing to manage"),
    ],
)
def test_bad_input_runs_nothing(debian12, overrides, message):
    root, lists = debian12
    runner = FakeRunner({})
    with pytest.raises(ModuleError) as err:
        run(params(**overrides), runner, False, root)
    assert message in err.value.msg and runner.calls == []


def test_unsupported_distro_for_profiles(tree):
    root = Sysroot(str(tree({"etc/os-release": 'ID=debian\nVERSION_ID="11"\n'})))
    with pytest.raises(ModuleError) as err:
        run(params(), FakeRunner({}), False, root)
    assert "no package names for debian 11" in err.value.msg


def test_state_absent_removes_what_is_installed(debian12):
    root, lists = debian12
    query = DPKG_QUERY + ("build-essential", "cmake")
    runner = FakeRunner({query: (0, "build-essential\tii \t12.9\n", ""), APT_GET + ("remove", "build-essential"): (0, "", "")})
    real_run = runner.run

    def after_remove(argv, check=True, data=None, timeout=None, env=None, cwd=None):
        if tuple(argv) == APT_GET + ("remove", "build-essential"):
            runner.responses[query] = (1, "", "dpkg-query: no packages found matching build-essential\n")
        return real_run(argv, check, data, timeout, env, cwd)

    runner.run = after_remove
    result = run(params(state="absent"), runner, False, root)
    assert result["changed"] and result["removed"] == ["build-essential"]
    assert runner.calls[-2] == list(APT_GET + ("remove", "build-essential")) and runner.calls[-1] == list(query)
    assert result["versions"] == {"build-essential": None, "cmake": None}


def test_state_absent_verifies_the_removal(debian12):
    root, lists = debian12
    query = DPKG_QUERY + ("build-essential", "cmake")
    runner = FakeRunner({query: (0, "build-essential\tii \t12.9\n", ""), APT_GET + ("remove", "build-essential"): (0, "", "")})
    with pytest.raises(ModuleError) as err:
        run(params(state="absent"), runner, False, root)
    assert "build-essential is still installed" in err.value.msg


def test_state_absent_in_check_mode_removes_nothing(debian12):
    root, lists = debian12
    runner = FakeRunner({DPKG_QUERY + ("build-essential", "cmake"): (0, "build-essential\tii \t12.9\n", "")})
    result = run(params(state="absent"), runner, True, root)
    assert result["changed"] is True and result["removed"] == ["build-essential"] and len(runner.calls) == 1


def test_dnf_check_mode_reports_what_the_real_run_does(tree):
    """With dnf the plan cannot read availability without a refresh: both runs report the missing packages."""
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/rocky9")})))
    rpm = ("rpm", "-q", "--whatprovides", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", "git", "ninja-build")
    absent = (1, "no package provides git\nno package provides ninja-build\n", "")
    responses = {
        rpm: absent,
        ("dnf", "-q", "makecache", "--setopt=metadata_expire=86400"): (0, "", ""),
        ("dnf", "-q", "repoquery", "--qf", "%{name}\\n", "git", "ninja-build"): (0, "git\nninja-build\n", ""),
        ("dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install", "git", "ninja-build"): (0, "", ""),
    }
    checked_runner = FakeRunner(responses)
    checked = run(params(profiles=["git"], extra_packages=["ninja-build"]), checked_runner, check_mode=True, root=root)
    assert checked_runner.calls == [list(rpm)]
    runner = FakeRunner(responses)
    real_run = runner.run

    def after_install(argv, check=True, data=None, timeout=None, env=None, cwd=None):
        if argv[-3:] == ["install", "git", "ninja-build"]:
            runner.responses[rpm] = (0, "git\t0:2.43.5-1.el9\nninja-build\t0:1.10.2-6.el9\n", "")
        return real_run(argv, check, data, timeout, env, cwd)

    runner.run = after_install
    real = run(params(profiles=["git"], extra_packages=["ninja-build"]), runner, check_mode=False, root=root)
    for key in ("changed", "packages", "installed", "removed", "plan", "pkg_mgr"):
        assert checked[key] == real[key], key
    assert real["changed"] is True and real["plan"] == ["git", "ninja-build"] and real["cache_updated"] is True
    assert real["versions"] == {"git": "0:2.43.5-1.el9", "ninja-build": "0:1.10.2-6.el9"}
    assert [c[0] for c in runner.calls] == ["rpm", "dnf", "dnf", "dnf", "rpm"]
    assert "makecache" in runner.calls[1] and "repoquery" in runner.calls[2] and "install" in runner.calls[3]
