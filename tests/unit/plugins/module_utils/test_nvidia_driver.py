# SPDX-License-Identifier: GPL-3.0-or-later
"""nvidia_driver's decisions: input checks, package names per source, the source check, a rerun that changes nothing."""

from __future__ import annotations

import os
import platform

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _nvidia_driver as nd, _nvidia_repo, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text

DEBIAN12 = {"id": "debian", "version": "12", "major": "12", "codename": "bookworm", "family": "debian", "name": "Debian 12"}
DEBIAN13 = dict(DEBIAN12, version="13", major="13", codename="trixie", name="Debian 13")
UBUNTU = {"id": "ubuntu", "version": "24.04", "major": "24", "family": "debian"}
ROCKY9 = {"id": "rocky", "version": "9.4", "major": "9", "family": "redhat"}
ALMA10 = {"id": "almalinux", "version": "10.0", "major": "10", "family": "redhat"}
QUERY = ["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + nd.APT_DRIVER_GLOBS
SOURCES = "deb http://deb.debian.org/debian {c} main\ndeb http://deb.debian.org/debian-security {c}-security main\n"


def params(**overrides):
    base = {"branch": "", "version": "", "flavor": "auto", "source": "auto", "repo_url": "", "repo_key": "", "repo_key_sha256": "",
            "hold": True, "blacklist_nouveau": True, "persistence": True, "kernel_headers": True, "server_packages": True,
            "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"branch": "55"}, "not a driver branch"),
        ({"branch": "r550"}, "not a driver branch"),
        ({"version": "550"}, "not a driver version"),
        ({"version": "latest"}, "not a driver version"),
        ({"branch": "535", "version": "550.163.01"}, "not on branch 535"),
        ({"source": "nvidia_repo"}, "needs repo_key"),
        ({"source": "nvidia_repo", "repo_key": "keys/nvidia.pub"}, "neither an absolute path"),
        ({"source": "nvidia_repo", "repo_key": "https://x/k.pub"}, "give repo_key_sha256"),
        ({"source": "nvidia_repo", "repo_key": "http://x/k.pub"}, "plain-http URL without repo_key_sha256"),
        ({"source": "nvidia_repo", "repo_key": "/k.pub", "repo_key_sha256": "abc"}, "64 hexadecimal"),
        ({"repo_url": "mirror/cuda"}, "not an http"),
        ({"lock_timeout": -1}, "0 or more seconds"),
    ],
)
def test_bad_input_is_refused_with_the_fix(overrides, words):
    with pytest.raises(nd.DriverError, match=words):
        nd.validate(params(**overrides))


@pytest.mark.parametrize(
    "distro, source, flavor, branch, packages, stream",
    [
        (DEBIAN12, "distro", "proprietary", "535", ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced"], None),
        (DEBIAN13, "distro", "open", "550", ["nvidia-driver", "nvidia-open-kernel-dkms", "nvidia-smi", "nvidia-persistenced"], None),
        (UBUNTU, "distro", "open", "570", ["nvidia-driver-570-server-open", "nvidia-utils-570-server"], None),
        (DEBIAN12, "nvidia_repo", "open", "580", ["nvidia-open-580"], None),
        (DEBIAN12, "nvidia_repo", "proprietary", "550", ["cuda-drivers-550"], None),
        (DEBIAN12, "nvidia_repo", "proprietary", None, ["cuda-drivers"], None),
        (ROCKY9, "nvidia_repo", "proprietary", "550", ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-latest-dkms"], "nvidia-driver:550-dkms"),
        (ROCKY9, "nvidia_repo", "open", "580", ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"], "nvidia-driver:580-open"),
        (ALMA10, "nvidia_repo", "open", "580", ["nvidia-open-580"], None),
    ],
)
def test_package_names_per_source(distro, source, flavor, branch, packages, stream):
    names, versioned, module_stream = nd.driver_packages(distro, source, flavor, branch, "6.1.0-28-amd64")
    assert names == packages and module_stream == stream
    assert set(versioned) <= set(names)


def test_rhel_has_no_driver_of_its_own():
    with pytest.raises(nd.DriverError, match="use source: nvidia_repo"):
        nd.driver_packages(ROCKY9, "distro", "open", "550", "5.14")


@pytest.mark.parametrize(
    "source, distro, branch, picked",
    [("auto", DEBIAN12, "", "distro"), ("auto", DEBIAN12, "535", "distro"), ("auto", DEBIAN12, "580", "nvidia_repo"),
     ("auto", DEBIAN13, "550", "distro"), ("auto", UBUNTU, "570", "distro"), ("auto", ROCKY9, "", "nvidia_repo"),
     ("distro", DEBIAN12, "580", "distro")],
)
def test_source_auto(source, distro, branch, picked):
    assert nd.pick_source(params(source=source, branch=branch), distro) == picked


def test_flavor_auto_is_open_from_560():
    assert [nd.pick_flavor("auto", b) for b in ("535", "550", "560", "580", None)] == ["proprietary"] * 2 + ["open"] * 2 + ["proprietary"]
    assert nd.pick_flavor("proprietary", "580") == "proprietary"


@pytest.fixture
def debian(tree, monkeypatch, tmp_path):
    def make(release="12", extra=None):
        codename = "bookworm" if release == "12" else "trixie"
        files = {"etc/os-release": fixture_text(f"os-release/debian{release}"), "etc/apt/sources.list": SOURCES.format(c=codename),
                 "proc/modules": "", "usr/bin/dpkg": "", "usr/bin/apt-get": ""}
        files.update(extra or {})
        return Sysroot(str(tree(files)))

    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    return make


def test_branch_580_from_debian12_is_refused_before_any_command(debian):
    root = debian("12")
    with pytest.raises(nd.DriverError, match="carries only the 535 driver branch.*source: nvidia_repo"):
        nd.make_plan(params(branch="580", source="distro"), root, key=lambda: b"")


def test_plan_for_debian12_adds_the_components_file(debian):
    plan = nd.make_plan(params(branch="535"), debian("12"), key=lambda: b"", kernel="6.1.0-28-amd64")
    assert plan.source == "distro" and plan.flavor == "proprietary" and plan.headers == ["linux-headers-6.1.0-28-amd64"]
    content = plan.files[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode()
    assert "Suites: bookworm\nComponents: contrib non-free non-free-firmware\n" in content


def test_installed_driver_from_captured_dpkg_query():
    runner = FakeRunner({tuple(QUERY): (1, fixture_text("dpkg/query-nvidia-debian13.txt"), "")})
    found = nd.installed_set(runner, "apt")
    assert nd.driver_version_of(found) == "550.163.01"
    assert found["nvidia-persistenced"] == {"version": "550.163.01-1", "held": False}
    assert "nvidia-open-kernel-dkms" not in found  # listed by dpkg as not installed
    members = nd.members(found, "550.163.01", ["nvidia-persistenced"])
    assert {"nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced"} <= set(members)
    assert "nvidia-cuda-toolkit" not in members


def test_held_packages_read_from_the_status_abbreviation():
    held = _packages.parse_dpkg_query(
        fixture_text("dpkg/query-held-debian13.txt"), {"nvidia-driver": None, "nvidia-kernel-dkms": None, "nvidia-open-kernel-dkms": None}
    )
    assert held == {"nvidia-driver": "550.163.01-2", "nvidia-kernel-dkms": "550.163.01-2", "nvidia-open-kernel-dkms": None}


def test_debian12_open_flavor_is_refused_for_mismatched_versions(debian, monkeypatch):
    """Real archive state (captured apt-cache policy): the open modules lag Debian 12's driver security update."""
    root = debian("12")
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    policy = fixture_text("apt/policy-nvidia-debian12.txt")
    plan = nd.make_plan(params(branch="535", flavor="open"), root, key=lambda: b"", kernel="6.1.0-28-amd64")
    names = plan.packages + plan.headers
    runner = FakeRunner({("apt-cache", "policy", *names): (0, policy, "")})
    driver = nd.Driver(params(branch="535", flavor="open"), runner, True, root, fetch=lambda url: b"")
    with pytest.raises(nd.DriverError, match=r"mismatched versions .*nvidia-driver 535\.309\.01, nvidia-open-kernel-dkms 535\.261\.03"):
        driver._check_candidates(_packages.Apt(runner), plan, names)


def test_debian12_branch_check_against_the_archive(debian, monkeypatch):
    root = debian("12")
    plan = nd.make_plan(params(branch="535"), root, key=lambda: b"", kernel="6.1.0-28-amd64")
    plan = plan._replace(branch="550")  # as if Debian had been asked for another branch through the table's back
    names = plan.packages
    runner = FakeRunner({("apt-cache", "policy", *names): (0, fixture_text("apt/policy-nvidia-debian12.txt"), "")})
    driver = nd.Driver(params(branch="550"), runner, True, root, fetch=lambda url: b"")
    with pytest.raises(nd.DriverError, match=r"offers driver 535\.309\.01 \(branch 535\), not branch 550"):
        driver._check_candidates(_packages.Apt(runner), plan, names)


def test_missing_headers_are_a_warning_in_a_container_only(debian):
    root = debian("12", {".dockerenv": ""})
    plan = nd.make_plan(params(branch="535"), root, key=lambda: b"", kernel="6.18.44-custom")
    names = plan.packages + plan.headers
    policy = fixture_text("apt/policy-nvidia-debian12.txt") + "linux-headers-6.18.44-custom:\n  Installed: (none)\n  Candidate: (none)\n"
    runner = FakeRunner({("apt-cache", "policy", *names): (0, policy, "")})
    driver = nd.Driver(params(branch="535"), runner, True, root, fetch=lambda url: b"")
    assert driver._check_candidates(_packages.Apt(runner), plan, names) == ["linux-headers-6.18.44-custom"]
    assert "skipped in this container" in driver.warnings[0]
    os.remove(root.path(".dockerenv"))  # the same tree, now a host
    driver = nd.Driver(params(branch="535"), runner, True, root, fetch=lambda url: b"")
    with pytest.raises(nd.DriverError, match="DKMS cannot build the module"):
        driver._check_candidates(_packages.Apt(runner), plan, names)


def test_a_provisioned_host_reruns_with_two_commands_and_no_change(debian, monkeypatch):
    kernel = "6.1.0-28-amd64"
    components = nd.make_plan(params(branch="535"), debian("12"), key=lambda: b"", kernel=kernel).files
    root = debian("12", {
        _nvidia_repo.DEBIAN_COMPONENTS_FILE.lstrip("/"): components[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode(),
        nd.BLACKLIST_FILE.lstrip("/"): nd.BLACKLIST.decode(),
    })
    installed = "".join(
        f"{name}\thi \t535.309.01-0+deb12u1\n" for name in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "libcuda1")
    ) + f"nvidia-persistenced\thi \t535.171.04-1~deb12u1\nlinux-headers-{kernel}\tii \t6.1.123-1\n"
    query = QUERY + [f"linux-headers-{kernel}"]
    runner = FakeRunner(
        {tuple(query): (0, installed, ""), ("/usr/bin/systemctl", "is-enabled", "nvidia-persistenced.service"): (0, "enabled\n", "")},
        programs={"systemctl": "/usr/bin/systemctl"},
    )
    monkeypatch.setattr(platform, "release", lambda: kernel)
    result = nd.Driver(params(branch="535"), runner, False, root, fetch=lambda url: b"", today="2026-11-22").run()
    assert result["changed"] is False and result["actions"] == []
    assert len(runner.calls) == 2
    assert result["installed_version"] == "535.309.01"
    assert result["reboot_required"] is True and result["reboot_reasons"] == ["nvidia driver 535.309.01 installed, not loaded"]
    assert result["branch_status"] == {"designation": "long-term support branch", "eol": "2026-06", "eol_passed": True}
    assert "end of life" in result["warnings_list"][0]


def test_branch_data():
    assert _compat.branch_of("535.261.03") == "535"
    assert _compat.branch_latest("550") == "550.999.99"
    assert _compat.cuda_driver_compatible(_compat.branch_latest("550"), "12.4")
    assert not _compat.cuda_driver_compatible(_compat.branch_latest("535"), "12.4")
    assert _compat.branch_status("580", "2026-11-22") == {"designation": "long-term support branch", "eol": "2028-06", "eol_passed": False}
    assert _compat.branch_status("999", "2026-11") == {"designation": None, "eol": None, "eol_passed": None}
    with pytest.raises(ValueError):
        _compat.branch_latest("5")


def test_apt_space_and_candidates_from_captured_output():
    assert _packages.parse_apt_space(fixture_text("apt/assume-no-nvidia-debian12.txt")) == (1_797_000_000, 6_350_000_000)
    candidates = _packages.parse_apt_candidates(fixture_text("apt/policy-nvidia-debian13.txt"))
    assert candidates["nvidia-driver"] == "550.163.01-2" and candidates["nvidia-cuda-toolkit"] == "12.4.131~12.4.1-2"


def test_a_branch_change_unholds_upgrades_and_holds_again_in_check_mode(debian, monkeypatch):
    """Check mode on a host with Debian's 535 held, asked for 550 from a mirror of NVIDIA's repository."""
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n-----END PGP PUBLIC KEY BLOCK-----\n"
    root = debian("12", {"srv/keys/nvidia.asc": key})
    monkeypatch.setattr(platform, "release", lambda: "6.1.0-28-amd64")
    installed = "".join(f"{n}\thi \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"))
    query = QUERY + ["linux-headers-6.1.0-28-amd64"]
    runner = FakeRunner({tuple(query): (0, installed, "")}, programs={})
    p = params(branch="550", source="nvidia_repo", repo_url="https://mirror.example/cuda/debian12/x86_64",
               repo_key="/srv/keys/nvidia.asc", persistence=False, blacklist_nouveau=False)
    result = nd.Driver(p, runner, True, root, fetch=lambda url: b"", today="2026-11-22").run()
    assert result["changed"] is True
    actions = result["actions"]
    assert actions[:3] == [
        "would write /etc/apt/keyrings/mlhost-nvidia-cuda.asc",
        "would write /etc/apt/sources.list.d/mlhost-nvidia-cuda.sources",
        "would write /etc/apt/preferences.d/mlhost-nvidia-cuda",
    ]
    assert "driver change (branch 535 -> 550): unhold nvidia-driver, nvidia-kernel-dkms, nvidia-smi, upgrade, hold again" in actions
    assert "would install cuda-drivers-550 linux-headers-6.1.0-28-amd64" in actions
    assert any(a.startswith("would hold ") and "cuda-drivers-550" in a for a in actions)
    assert not __import__("os").path.exists(root.path("etc/apt/sources.list.d/mlhost-nvidia-cuda.sources"))
    assert len(runner.calls) == 1
