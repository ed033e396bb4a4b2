# SPDX-License-Identifier: GPL-3.0-or-later
"""cuda_toolkit's decisions: the driver check and its message, release names, space, the profile script."""

from __future__ import annotations

import pytest

import os
import re

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _cuda_toolkit as ct, _nvidia_driver, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker

QUERY = ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", *_nvidia_driver.APT_DRIVER_GLOBS)


def params(**overrides):
    base = {"version": "12.4", "source": "auto", "driver_version": "", "allow_minor_version_compat": False, "set_default": True,
            "check_space": True, "repo_url": "", "repo_key": "", "repo_key_sha256": "", "state": "present", "pkg_mgr": "auto",
            "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "cuda, driver, ok",
    [("11.8", "535.309.01", True), ("12.2", "535.309.01", True), ("12.4", "550.163.01", True), ("12.4", "535.309.01", False),
     ("12.8", "570.26", True), ("13.0", "575.57.08", False), ("12.4", "550.999.99", True), ("12.6", "550.999.99", False)],
)
def test_compatibility_against_nvidia_table(cuda, driver, ok):
    if ok:
        assert ct.check_compatible(cuda, driver, "installed", False)["compatible"] is True
    else:
        with pytest.raises(ModuleError, match="Nothing was changed"):
            ct.check_compatible(cuda, driver, "installed", False)


def test_the_refusal_names_the_driver_needed_and_the_newest_cuda_possible():
    with pytest.raises(ModuleError) as info:
        ct.check_compatible("12.4", "535.309.01", "installed", False)
    assert info.value.msg == (
        "CUDA 12.4 needs NVIDIA driver >= 550.54.14; this host has 535.309.01 installed. Install driver branch 550 or newer "
        "(nvidia_driver branch / mlhost_nvidia_driver_branch), or choose CUDA <= 12.2 (or allow_minor_version_compat with a "
        "driver >= 525.60.13). Nothing was changed."
    )
    with pytest.raises(ModuleError, match="this host has branch 535 planned"):
        ct.check_compatible("12.4", ct.planned_driver("535"), "planned", False)


def test_minor_version_compatibility_is_opt_in():
    assert ct.check_compatible("12.4", "535.309.01", "installed", True)["compatible"] is True
    assert ct.check_compatible("12.4", None, "none", False) == {"min_driver": "550.54.14", "compatible": None}


@pytest.mark.parametrize("version, words", [("12.7", "does not exist"), ("12.10", "does not exist"), ("11.9", "does not exist"),
                                            ("12.4.7", "does not exist"), ("twelve", "is not a CUDA version")])
def test_unknown_releases_are_errors(version, words):
    with pytest.raises(ModuleError, match=words):
        ct.check_options(params(version=version))


@pytest.mark.parametrize(
    "overrides, words",
    [({"version": ""}, "version is required"), ({"driver_version": "five-fifty"}, "not a driver version"),
     ({"version": "１２.４"}, "is not a CUDA version"), ({"driver_version": "550\n"}, "NUL byte, a line break")],
)
def test_bad_input(overrides, words):
    with pytest.raises(ModuleError, match=words):
        ct.check_options(params(**overrides))


def test_release_names():
    assert ct.major_minor("12.4.1") == "12.4" and ct.major_minor("11.8") == "11.8"


def test_profile_scripts():
    repo = ct.profile_script("/usr/local/cuda", with_paths=True).decode()
    assert "export CUDA_HOME=/usr/local/cuda\n" in repo
    assert 'PATH="/usr/local/cuda/bin:${PATH}"' in repo and "/usr/local/cuda/lib64" in repo
    distro = ct.profile_script("/usr", with_paths=False).decode()
    assert distro.endswith("export CUDA_HOME=/usr\n") and "PATH" not in distro


def test_space_shortfall(tmp_path):
    assert ct.space_shortfall(0, 0, str(tmp_path), str(tmp_path)) is None
    message = ct.space_shortfall(10**15, 10**15, str(tmp_path), str(tmp_path / "not-yet"))
    assert message.startswith("Not enough disk space: the toolkit needs 2000000.0 GB") and "Nothing was installed" in message


@pytest.fixture
def debian(tree):
    def make(release):
        codename = "bookworm" if release == "12" else "trixie"
        return Sysroot(str(tree({"etc/os-release": fixture_text(f"os-release/debian{release}"), "usr/bin/dpkg": "",
                                 "etc/apt/sources.list": f"deb http://deb.debian.org/debian {codename} main\n", "proc/modules": "",
                                 "proc/sys/kernel/arch": "x86_64\n"})))
    return make


def test_cuda_12_4_on_debian12_with_its_driver_is_refused_after_one_query(debian):
    installed = "".join(f"{n}\tii \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "libcuda1"))
    runner = FakeRunner({QUERY: (0, installed, "")})
    with pytest.raises(ModuleError, match=r"needs NVIDIA driver >= 550\.54\.14; this host has 535\.309\.01 installed"):
        run_worker(ct.Toolkit, make_host(params(version="12.4", source="nvidia_repo", repo_key="/k.pub"), runner, sysroot=debian("12")))
    assert len(runner.calls) == 1


def test_a_keyless_nvidia_repository_chosen_by_auto_says_why_before_any_command(debian, monkeypatch):
    """A tree whose published key the data does not list: the refusal names the options and why auto chose the repository."""
    monkeypatch.setattr(_compat, "NVIDIA_REPO_KEYS", {})
    runner = FakeRunner({QUERY: (1, "", "")})
    with pytest.raises(ModuleError) as info:
        run_worker(ct.Toolkit, make_host(params(version="12.4"), runner, sysroot=debian("12")))
    assert info.value.msg == (
        "NVIDIA's repository needs repo_key here (source: auto chose NVIDIA's CUDA repository because Debian GNU/Linux 12 "
        "(bookworm) carries CUDA 11.8, not 12.4), and the collection knows no published key for the debian12 tree. Set "
        "repo_key to the repository's signing key (an absolute path on the host, a file:// URL, or an https URL) and "
        "repo_key_fingerprints to its fingerprint, or set source: distro. Nothing was changed."
    )
    assert all(call[0] == "dpkg-query" for call in runner.calls)


def test_a_keyless_nvidia_repository_offline_says_the_download_failed(debian):
    """With NVIDIA's published key listed, an offline host fails on the key's download, before any change."""
    runner = FakeRunner({QUERY: (1, "", "")})
    asked = []

    def offline(url):
        asked.append(url)
        raise ModuleError(f"Downloading {url} failed: <urlopen error [Errno -3] Temporary failure in name resolution>")

    with pytest.raises(ModuleError, match="Downloading .*/debian12/x86_64/3bf863cc.pub failed"):
        run_worker(ct.Toolkit, make_host(params(version="12.4"), runner, sysroot=debian("12"), fetch=offline))
    assert asked == ["https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/3bf863cc.pub"]
    assert all(call[0] == "dpkg-query" for call in runner.calls)


def test_distro_source_must_carry_the_release(debian):
    runner = FakeRunner({QUERY: (1, "", "")})
    with pytest.raises(ModuleError, match=r"carries CUDA 11\.8, not 12\.4: use source: nvidia_repo"):
        run_worker(ct.Toolkit, make_host(params(version="12.4", source="distro"), runner, sysroot=debian("12")))
    assert runner.calls == []


def test_auto_takes_the_distribution_release_and_check_mode_changes_nothing(debian, monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: None)  # no package lists: the source is asked after the refresh
    root = debian("13")
    runner = FakeRunner({
        QUERY: (1, fixture_text("dpkg/query-nvidia-debian13.txt"), ""),
        ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "nvidia-cuda-toolkit"): (1, "", ""),
    })
    result = run_worker(ct.Toolkit, make_host(params(version="auto"), runner, check_mode=True, sysroot=root))
    assert result["version"] == "12.4" and result["source"] == "distro" and result["compatible"] is True
    assert result["driver_version"] == "550.163.01" and result["driver_origin"] == "installed"
    assert result["source_reason"] == "version auto takes the distribution's toolkit: Debian GNU/Linux 13 (trixie) carries CUDA 12.4"
    assert result["changed"] is True
    assert result["actions"][-2:] == ["install nvidia-cuda-toolkit", "write /etc/profile.d/mlhost-cuda.sh"]
    assert not os.path.exists(root.path("etc/profile.d/mlhost-cuda.sh"))


def test_check_mode_is_the_plan_the_real_run_carries_out(debian, monkeypatch):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_repo

    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    root = debian("13")
    components = _nvidia_repo.debian_components_file(_nvidia_repo.read_apt_sources(root.root), "trixie")
    os.makedirs(root.path("etc/apt/sources.list.d"))
    with open(root.path(_nvidia_repo.DEBIAN_COMPONENTS_FILE.lstrip("/")), "w", encoding="utf-8") as handle:
        handle.write(components)
    toolkit_query = ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "nvidia-cuda-toolkit")
    apt = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]

    def runner():
        return FakeRunner({
            QUERY: (1, fixture_text("dpkg/query-nvidia-debian13.txt"), ""),
            toolkit_query: [(1, "", ""), (0, "nvidia-cuda-toolkit\tii \t12.4.131~12.4.1-2\n", "")],
            ("apt-cache", "policy", "nvidia-cuda-toolkit"): (0, fixture_text("apt/policy-nvidia-debian13.txt"), ""),
            ("apt-get", "-q", "--assume-no", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends", "install",
             "nvidia-cuda-toolkit"): (1, "Need to get 1,000 kB of archives.\nAfter this operation, 2,000 kB of additional disk "
                                         "space will be used.\nAbort.\n", ""),
            tuple(apt + ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "--no-install-recommends",
                         "install", "nvidia-cuda-toolkit"]): (0, "", ""),
        })

    check_runner = runner()
    check = run_worker(ct.Toolkit, make_host(params(version="12.4"), check_runner, check_mode=True, sysroot=root))
    assert not os.path.exists(root.path(ct.PROFILE.lstrip("/")))
    real_runner = runner()
    real = run_worker(ct.Toolkit, make_host(params(version="12.4"), real_runner, sysroot=root))
    for key in ("changed", "actions", "packages", "version", "source", "path", "compatible"):
        assert check[key] == real[key], key
    assert real["actions"] == ["refresh the package lists", "install nvidia-cuda-toolkit", f"write {ct.PROFILE}"]
    assert real_runner.calls[:len(check_runner.calls)] == check_runner.calls
    assert [c[-1] for c in real_runner.calls[len(check_runner.calls):]] == ["nvidia-cuda-toolkit", "nvidia-cuda-toolkit"]
    assert real_runner.calls[-2][-2:] == ["install", "nvidia-cuda-toolkit"]
    with open(root.path(ct.PROFILE.lstrip("/")), "rb") as handle:
        assert handle.read() == ct.profile_script("/usr", with_paths=False)
    rerun_runner = runner()
    rerun_runner.responses[toolkit_query] = (0, "nvidia-cuda-toolkit\tii \t12.4.131~12.4.1-2\n", "")
    rerun = run_worker(ct.Toolkit, make_host(params(version="12.4"), rerun_runner, sysroot=root))
    assert rerun["changed"] is False and rerun["actions"] == [] and len(rerun_runner.calls) == 2


def test_check_mode_of_a_removal_is_what_the_removal_does(debian):
    root = debian("12")
    link = root.path("usr/local/cuda")
    os.makedirs(root.path("usr/local/cuda-12.4"))
    os.symlink("/usr/local/cuda-12.4", link)
    os.makedirs(root.path("etc/profile.d"))
    with open(root.path(ct.PROFILE.lstrip("/")), "wb") as handle:
        handle.write(ct.profile_script(ct.DEFAULT_LINK, with_paths=True))
    query = ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "cuda-toolkit-12-4")
    remove = ("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", "remove", "cuda-toolkit-12-4")

    def runner():
        return FakeRunner({QUERY: (1, "", ""), query: [(0, "cuda-toolkit-12-4\tii \t12.4.131-1\n", ""), (1, "", "")],
                           remove: (0, "", "")})

    p = params(version="12.4", source="nvidia_repo", repo_key="/k.pub", state="absent")
    check = run_worker(ct.Toolkit, make_host(p, runner(), check_mode=True, sysroot=root))
    assert os.path.islink(link)
    real_runner = runner()
    real = run_worker(ct.Toolkit, make_host(p, real_runner, sysroot=root))
    assert check["actions"] == real["actions"] == ["remove cuda-toolkit-12-4", "remove /usr/local/cuda", f"remove {ct.PROFILE}"]
    assert check["changed"] is real["changed"] is True
    assert list(remove) in real_runner.calls
    assert not os.path.lexists(link) and not os.path.exists(root.path(ct.PROFILE.lstrip("/")))


def test_a_planned_driver_too_old_is_said_before_the_source_is_chosen(tree):
    """Debian 12 carries CUDA 11.8, so 12.4 would come from NVIDIA's repository (which needs repo_key): the driver that
    cannot run 12.4 is the first thing to say, before any command and before the repository's key."""
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12")})))
    host = make_host(params(version="12.4", driver_version="535.261.03"), FakeRunner({}), check_mode=True, sysroot=root)
    with pytest.raises(ModuleError) as info:
        ct.Toolkit(host).plan()
    assert info.value.msg.startswith("CUDA 12.4 needs NVIDIA driver >= 550.54.14; this host has 535.261.03 planned")
    assert host.runner.calls == []


def test_auto_never_makes_an_older_distribution_toolkit_the_default_over_a_newer_one(debian, monkeypatch):
    """Debian 13 carries 12.4; CUDA 13.0 from NVIDIA's repository sits in /usr/local/cuda-13.0 (version.json as NVIDIA ships it)."""
    root = debian("13")
    os.makedirs(root.path("usr/local/cuda-13.0/bin"))
    with open(root.path("usr/local/cuda-13.0/version.json"), "w", encoding="utf-8") as handle:
        handle.write('{"cuda": {"name": "CUDA SDK", "version": "13.0.2"}}')
    runner = FakeRunner({QUERY: (1, fixture_text("dpkg/query-nvidia-debian13.txt"), "")})
    with pytest.raises(ModuleError, match='would take the distribution.s CUDA 12.4 and make it the default .* CUDA 13.0 is installed at '
                                          '/usr/local/cuda-13.0. Set version: "13.0"'):
        run_worker(ct.Toolkit, make_host(params(version="auto"), runner, check_mode=True, sysroot=root))
    assert all(call[0] == "dpkg-query" for call in runner.calls)
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: None)
    runner = FakeRunner({
        QUERY: (1, fixture_text("dpkg/query-nvidia-debian13.txt"), ""),
        ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "nvidia-cuda-toolkit"): (1, "", ""),
    })
    beside = run_worker(ct.Toolkit, make_host(params(version="auto", set_default=False), runner, check_mode=True, sysroot=root))
    assert beside["version"] == "12.4" and any("leaves the default as it is" in w for w in beside["warnings"])


# The repository as the source of truth: which toolkits it offers (captured from real apt against the STAND-IN
# repository, fixtures/nvidia_standin/toolkits_offered.txt), and releases newer than the data.


def capture_output(name, command):
    """What ``command`` printed in a stand-in capture (the lines after '$ command', up to its exit status)."""
    text = fixture_text(name)
    body = text.split(f"$ {command}\n", 1)[1]
    return body.split("[exit status", 1)[0]


PKGNAMES = ("apt-cache", "pkgnames", "cuda-toolkit-")
STANDIN_POLICY = ("apt-cache", "policy", "cuda-toolkit-12-8", "cuda-toolkit-13-0")


def standin_offers(extra=""):
    """Runner answers for the stand-in's toolkit listing (``extra``: more names, stood in for a newer repository)."""
    names = capture_output("nvidia_standin/toolkits_offered.txt", "apt-cache pkgnames cuda-toolkit-") + extra
    policy = capture_output("nvidia_standin/toolkits_offered.txt", "apt-cache policy cuda-toolkit-12-8 cuda-toolkit-13-0")
    extra_names = [n for n in extra.split() if n]
    answers = {PKGNAMES: (0, names, "")}
    if extra_names:
        policy += "".join(f"{n}:\n  Installed: (none)\n  Candidate: {n[13:].replace('-', '.')}.0-1\n" for n in extra_names)
    answers[STANDIN_POLICY + tuple(extra_names)] = (0, policy, "")
    return answers


def test_offered_reads_the_names_then_their_candidates(monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    apt = _packages.Apt(FakeRunner(standin_offers()))
    assert apt.offered("cuda-toolkit-") == {"cuda-toolkit-12-8": "12.8.1-1", "cuda-toolkit-13-0": "13.0.2-1"}
    assert ct.offered_toolkits(apt) == ["12.8", "13.0"]
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: None)
    assert _packages.Apt(FakeRunner({})).offered("cuda-toolkit-") == {}    # no lists: nothing to read, no command


@pytest.mark.parametrize("prefix", ["", "cuda-toolkit-*", "-o", "a", "cuda toolkit", "cuda-toolkit-\n", "--all-names"])
def test_offered_runs_no_command_for_a_prefix_that_is_not_a_package_name(prefix, monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    assert _packages.Apt(FakeRunner({})).offered(prefix) == {}
    assert _packages.Dnf(FakeRunner({})).offered(prefix) == {}


def test_dnf_offered_parses_repoquery():
    argv = ("dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n", "cuda-toolkit-*")
    out = "cuda-toolkit-12-8\t12.8.1-1\ncuda-toolkit-13-0\t13.0.2-1\nnot-a-match\t1-1\n\ngarbage line\n"
    assert _packages.Dnf(FakeRunner({argv: (0, out, "")})).offered("cuda-toolkit-") == {
        "cuda-toolkit-12-8": "12.8.1-1", "cuda-toolkit-13-0": "13.0.2-1"}


def test_the_newest_release_in_the_data_and_what_is_newer():
    newest = _compat.newest_cuda()
    major, minor, update = (int(p) for p in newest.split("."))
    assert _compat.cuda_newer_than_data(f"{major}.{minor + 1}") and _compat.cuda_newer_than_data(f"{major + 1}.0")
    assert _compat.cuda_newer_than_data(f"{major}.{minor}.{update + 1}")
    assert not _compat.cuda_newer_than_data(newest) and not _compat.cuda_newer_than_data(f"{major}.{minor}")
    assert not _compat.cuda_newer_than_data("12.7") and not _compat.cuda_newer_than_data("12.10")
    for hostile in ("", "13", "99.99.99.99", "１３.９", "13.9\n", None, 13.9):
        assert not _compat.cuda_newer_than_data(hostile)


def newer_release():
    major, minor = (int(p) for p in _compat.newest_cuda().split(".")[:2])
    return f"{major}.{minor + 1}"


def test_a_release_newer_than_the_data_is_taken_from_the_repository_with_a_warning(debian, monkeypatch):
    """The repository offers a toolkit the data does not list yet: planned, with the major's floor checked and a warning."""
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    newer = newer_release()
    name = "cuda-toolkit-" + newer.replace(".", "-")
    root = debian("12")
    runner = FakeRunner({QUERY: (1, "", ""),
                         ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", name): (1, "", ""),
                         ("apt-cache", "policy", name): (0, f"{name}:\n  Installed: (none)\n  Candidate: {newer}.0-1\n", ""),
                         ("apt-get", "-q", "--assume-no", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends", "install",
                          name): (1, "Need to get 1,000 kB of archives.\nAfter this operation, 2,000 kB of additional disk space will be used.\n", "")})
    p = params(version=newer, source="nvidia_repo", repo_key="/k.pub", repo_key_sha256="0" * 64, driver_version="620")
    monkeypatch.setattr(ct.Toolkit, "_plan_present", _no_sources(ct.Toolkit._plan_present))
    result = run_worker(ct.Toolkit, make_host(p, runner, check_mode=True, sysroot=root))
    assert result["version"] == newer and result["min_driver"] is None and result["compatible"] is None
    assert any(f"CUDA {newer} is newer than this collection's compatibility data (checked {_compat.CUDA_RELEASES_CHECKED}" in w
               for w in result["warnings"])
    assert result["packages"] == [name] and f"install {name}" in result["actions"]


def _no_sources(plan_present):
    """_plan_present with the package source files taken as already in place (the key and sources are tested elsewhere)."""
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_repo

    def wrapped(self, *args, **kwargs):
        original = _nvidia_repo.source_files
        _nvidia_repo.source_files = lambda *a, **k: ({}, [])
        try:
            return plan_present(self, *args, **kwargs)
        finally:
            _nvidia_repo.source_files = original
    return wrapped


def test_a_newer_release_still_needs_its_majors_driver_floor():
    major = _compat.newest_cuda().split(".")[0]
    floor = _compat.MINOR_VERSION_COMPAT[major]
    with pytest.raises(ModuleError, match=rf"needs NVIDIA driver >= {floor} at the very least .* this host has 470.256.02 installed"):
        ct.check_compatible(newer_release(), "470.256.02", "installed", False)
    assert ct.check_compatible(newer_release(), floor, "installed", False) == {"min_driver": None, "compatible": None}


def test_a_newer_release_is_refused_from_the_distribution(debian):
    with pytest.raises(ModuleError, match=rf"carries CUDA 11\.8, not {re.escape(newer_release())}: use source: nvidia_repo"):
        run_worker(ct.Toolkit, make_host(params(version=newer_release(), source="distro"), FakeRunner({}), sysroot=debian("12")))


def test_a_toolkit_the_repository_lacks_is_refused_naming_what_it_offers(debian, monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    monkeypatch.setattr(ct.Toolkit, "_plan_present", _no_sources(ct.Toolkit._plan_present))
    answers = standin_offers()
    answers.update({QUERY: (1, "", ""),
                    ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "cuda-toolkit-12-4"): (1, "", ""),
                    ("apt-cache", "policy", "cuda-toolkit-12-4"): (0, "", "")})
    p = params(version="12.4", source="nvidia_repo", repo_key="/k.pub", repo_key_sha256="0" * 64, driver_version="590")
    with pytest.raises(ModuleError) as info:
        run_worker(ct.Toolkit, make_host(p, FakeRunner(answers), check_mode=True, sysroot=debian("12")))
    assert info.value.msg == ("The nvidia_repo source has no cuda-toolkit-12-4: check repo_url (NVIDIA's repository or its mirror) "
                              "carries that toolkit; it offers CUDA 12.8, 13.0. Nothing was installed.")


@pytest.mark.parametrize("driver, expected", [("590.48.01", "13.0"), ("570.124.06", "12.8")])
def test_auto_takes_the_newest_toolkit_the_repository_offers_that_the_driver_runs(driver, expected, tree, monkeypatch):
    """Ubuntu 24.04 carries 12.0 but auto with source nvidia_repo reads the repository: the stand-in offers 12.8 and 13.0
    (and, stood in for a newer repository, a release newer than the data, which auto never takes)."""
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    monkeypatch.setattr(ct.Toolkit, "_plan_present", lambda self, *a: ([], {}))
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12"), "usr/bin/dpkg": ""})))
    extra = "cuda-toolkit-" + newer_release().replace(".", "-") + "\n"
    runner = FakeRunner(standin_offers(extra))
    p = params(version="auto", source="nvidia_repo", repo_key="/k.pub", driver_version=driver)
    result = run_worker(ct.Toolkit, make_host(p, runner, check_mode=True, sysroot=root))
    assert result["version"] == expected
    assert result["source_reason"].startswith(f"version auto takes the newest CUDA the repository offers that driver {driver} runs "
                                              f"({expected}; offered: 12.8, 13.0, {newer_release()})")


def test_auto_refuses_when_the_repository_offers_nothing_the_driver_runs(tree, monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12"), "usr/bin/dpkg": ""})))
    p = params(version="auto", source="nvidia_repo", repo_key="/k.pub", driver_version="550.163.01")
    with pytest.raises(ModuleError, match=r"the repository offers CUDA 12.8, 13.0, and driver 550.163.01 runs none of them \(it runs CUDA <= 12.4\)"):
        run_worker(ct.Toolkit, make_host(p, FakeRunner(standin_offers()), check_mode=True, sysroot=root))
