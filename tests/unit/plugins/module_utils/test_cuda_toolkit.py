# SPDX-License-Identifier: GPL-3.0-or-later
"""cuda_toolkit's decisions: the driver check and its message, release names, space, the profile script."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _cuda_toolkit as ct, _nvidia_driver
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text

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
        with pytest.raises(ct.ToolkitError, match="Nothing was changed"):
            ct.check_compatible(cuda, driver, "installed", False)


def test_the_refusal_names_the_driver_needed_and_the_newest_cuda_possible():
    with pytest.raises(ct.ToolkitError) as info:
        ct.check_compatible("12.4", "535.309.01", "installed", False)
    assert info.value.msg == (
        "CUDA 12.4 needs NVIDIA driver >= 550.54.14; this host has 535.309.01 installed. Install driver branch 550 or newer "
        "(nvidia_driver branch / mlhost_nvidia_driver_branch), or choose CUDA <= 12.2 (or allow_minor_version_compat with a "
        "driver >= 525.60.13). Nothing was changed."
    )
    with pytest.raises(ct.ToolkitError, match="this host has branch 535 planned"):
        ct.check_compatible("12.4", ct.planned_driver("535"), "planned", False)


def test_minor_version_compatibility_is_opt_in():
    assert ct.check_compatible("12.4", "535.309.01", "installed", True)["compatible"] is True
    assert ct.check_compatible("12.4", None, "none", False) == {"min_driver": "550.54.14", "compatible": None}


@pytest.mark.parametrize("version, words", [("12.7", "does not exist"), ("13.5", "does not exist"), ("twelve", "is not a CUDA version")])
def test_unknown_releases_are_errors(version, words):
    with pytest.raises(ct.ToolkitError, match=words):
        ct.validate(params(version=version))


@pytest.mark.parametrize(
    "overrides, words",
    [({"version": ""}, "version is required"), ({"driver_version": "five-fifty"}, "not a driver version"),
     ({"source": "nvidia_repo"}, "needs repo_key")],
)
def test_bad_input(overrides, words):
    with pytest.raises((ct.ToolkitError, _nvidia_driver.DriverError), match=words):
        ct.validate(params(**overrides))


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
                                 "etc/apt/sources.list": f"deb http://deb.debian.org/debian {codename} main\n", "proc/modules": ""})))
    return make


def test_cuda_12_4_on_debian12_with_its_driver_is_refused_after_one_query(debian):
    installed = "".join(f"{n}\tii \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "libcuda1"))
    runner = FakeRunner({QUERY: (0, installed, "")})
    with pytest.raises(ct.ToolkitError, match=r"needs NVIDIA driver >= 550\.54\.14; this host has 535\.309\.01 installed"):
        ct.Toolkit(params(version="12.4", source="nvidia_repo", repo_key="/k.pub"), runner, False, debian("12"), lambda u: b"").run()
    assert len(runner.calls) == 1


def test_distro_source_must_carry_the_release(debian):
    runner = FakeRunner({QUERY: (1, "", "")})
    with pytest.raises(ct.ToolkitError, match=r"carries CUDA 11\.8, not 12\.4: use source: nvidia_repo"):
        ct.Toolkit(params(version="12.4", source="distro"), runner, False, debian("12"), lambda u: b"").run()


def test_auto_takes_the_distribution_release_and_check_mode_changes_nothing(debian):
    root = debian("13")
    runner = FakeRunner({
        QUERY: (1, fixture_text("dpkg/query-nvidia-debian13.txt"), ""),
        ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "nvidia-cuda-toolkit"): (1, "", ""),
    })
    result = ct.Toolkit(params(version="auto"), runner, True, root, lambda u: b"").run()
    assert result["version"] == "12.4" and result["source"] == "distro" and result["compatible"] is True
    assert result["driver_version"] == "550.163.01" and result["driver_origin"] == "installed"
    assert result["changed"] is True
    assert result["actions"][-2:] == ["would install nvidia-cuda-toolkit", "would write /etc/profile.d/mlhost-cuda.sh"]
    assert not (root.path("etc/profile.d/mlhost-cuda.sh") and __import__("os").path.exists(root.path("etc/profile.d/mlhost-cuda.sh")))
