# SPDX-License-Identifier: GPL-3.0-or-later
"""nvidia_driver's decisions: input checks, package names per source, the source check, a rerun that changes nothing."""

from __future__ import annotations

import os
import platform

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _distro, _nvidia_driver as nd, _nvidia_repo, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker

DEBIAN12 = {"id": "debian", "version": "12", "major": "12", "codename": "bookworm", "family": "debian", "name": "Debian 12"}
DEBIAN13 = dict(DEBIAN12, version="13", major="13", codename="trixie", name="Debian 13")
UBUNTU = {"id": "ubuntu", "version": "24.04", "major": "24", "family": "debian"}
ROCKY9 = {"id": "rocky", "version": "9.4", "major": "9", "family": "redhat"}
ALMA10 = {"id": "almalinux", "version": "10.0", "major": "10", "family": "redhat"}
QUERY = ["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + nd.APT_DRIVER_GLOBS
SOURCES = "deb http://deb.debian.org/debian {c} main\ndeb http://deb.debian.org/debian-security {c}-security main\n"


def params(**overrides):
    base = {"branch": "", "version": "", "flavor": "auto", "source": "auto", "repo_url": "", "repo_key": "", "repo_key_sha256": "",
            "hold": True, "blacklist_nouveau": True, "persistence": True, "exclude_from_automatic_upgrades": True,
            "mok_certificate": "", "mok_key": "", "hold_kernel": False, "kernel_modules": "auto", "kernel_headers": True, "server_packages": True,
            "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    base.update(overrides)
    return base


def layout(p, root, kernel=None, runner=None):
    """The driver's layout on ``root`` (an apt host), the key read from the tree."""
    return nd.make_layout(p, root, _distro.distro_facts(root), _packages.Apt(runner or FakeRunner({})), lambda url: b"", kernel)


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"branch": "55"}, "not a driver branch"),
        ({"branch": "r550"}, "not a driver branch"),
        ({"version": "550"}, "not a driver version"),
        ({"version": "latest"}, "not a driver version"),
        ({"branch": "535", "version": "550.163.01"}, "not on branch 535"),
        ({"source": "nvidia_repo", "repo_key": "keys/nvidia.pub"}, "neither an absolute path"),
        ({"source": "nvidia_repo", "repo_key": "https://x/k.pub"}, "a URL without repo_key_fingerprints or repo_key_sha256"),
        ({"source": "nvidia_repo", "repo_key": "http://x/k.pub"}, "plain-http URL without repo_key_fingerprints or repo_key_sha256"),
        ({"source": "nvidia_repo", "repo_key": "/k.pub", "repo_key_sha256": "abc"}, "64 hexadecimal"),
        ({"repo_url": "mirror/cuda"}, "not an http"),
        ({"lock_timeout": -1}, "0 or more seconds"),
    ],
)
def test_bad_input_is_refused_with_the_fix(overrides, words):
    with pytest.raises(ModuleError, match=words):
        nd.check_options(params(**overrides))


def test_nvidia_repo_without_a_key_takes_nvidias_published_key_and_checks_its_fingerprint(debian):
    """repo_key empty: the tree's key file is downloaded from the repository and must carry NVIDIA's fingerprint."""
    asked = []

    def fetch(url):
        asked.append(url)
        return fixture_text("openpgp/test-rsa3072-sha512.asc").encode()  # a test key, not NVIDIA's

    root = debian("12")
    with pytest.raises(ModuleError, match=r"NVIDIA's published key for debian12 \(3bf863cc.pub\) at https://developer.download.nvidia.com/"
                                          r"compute/cuda/repos/debian12/x86_64/3bf863cc.pub holds the key 56D3 .*, not EB69 3B30 .*"
                                          r"a mirror that signs with its own key needs repo_key and repo_key_fingerprints"):
        nd.make_layout(params(source="nvidia_repo", branch="580"), root, _distro.distro_facts(root), _packages.Apt(FakeRunner({})), fetch)
    assert asked == ["https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/3bf863cc.pub"]


def test_nvidia_repo_on_a_tree_without_a_known_key_names_the_options(debian, monkeypatch):
    monkeypatch.setattr(_compat, "NVIDIA_REPO_KEYS", {})
    with pytest.raises(ModuleError, match="needs repo_key here \\(source: nvidia_repo was set\\).*repo_key_fingerprints"):
        layout(params(source="nvidia_repo"), debian("12"))


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
        (ALMA10, "nvidia_repo", "open", "580", ["nvidia-open"], None),
    ],
)
def test_package_names_per_source(distro, source, flavor, branch, packages, stream):
    names, versioned, module_stream = nd.driver_packages(distro, source, flavor, branch, "6.1.0-28-amd64")
    assert names == packages and module_stream == stream
    assert set(versioned) <= set(names)


def test_rhel_has_no_driver_of_its_own():
    with pytest.raises(ModuleError, match="use source: nvidia_repo"):
        nd.driver_packages(ROCKY9, "distro", "open", "550", "5.14")


@pytest.mark.parametrize(
    "source, distro, branch, picked",
    [("auto", DEBIAN12, "", "distro"), ("auto", DEBIAN12, "535", "distro"), ("auto", DEBIAN12, "580", "nvidia_repo"),
     ("auto", DEBIAN13, "550", "distro"), ("auto", UBUNTU, "570", "distro"), ("auto", ROCKY9, "", "nvidia_repo"),
     ("distro", DEBIAN12, "580", "distro")],
)
def test_source_auto(source, distro, branch, picked):
    chosen, reason = nd.pick_source(params(source=source, branch=branch), distro)
    assert chosen == picked and reason


def test_source_auto_says_why_it_chose_nvidia_repo():
    assert nd.pick_source(params(branch="580"), DEBIAN12) == (
        "nvidia_repo", "Debian 12 carries only driver branch 535 and branch 580 was asked")
    assert nd.pick_source(params(), ROCKY9)[1] == "rocky 9.4 has no NVIDIA driver in its own repositories"


def test_flavor_auto_is_open_from_560():
    assert [nd.pick_flavor("auto", b) for b in ("535", "550", "560", "580", None)] == ["proprietary"] * 2 + ["open"] * 2 + ["proprietary"]
    assert nd.pick_flavor("proprietary", "580") == "proprietary"


@pytest.fixture
def debian(tree, monkeypatch, tmp_path):
    def make(release="12", extra=None):
        codename = "bookworm" if release == "12" else "trixie"
        files = {"etc/os-release": fixture_text(f"os-release/debian{release}"), "etc/apt/sources.list": SOURCES.format(c=codename),
                 "proc/modules": "", "usr/bin/dpkg": "", "usr/bin/apt-get": "", "proc/sys/kernel/arch": "x86_64\n"}
        files.update(extra or {})
        return Sysroot(str(tree(files)))

    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    return make


def test_branch_580_from_debian12_is_refused_before_any_command(debian):
    root = debian("12")
    with pytest.raises(ModuleError, match="carries only the 535 driver branch.*source: nvidia_repo"):
        layout(params(branch="580", source="distro"), root)


def test_plan_for_debian12_adds_the_components_file(debian):
    plan = layout(params(branch="535"), debian("12"), kernel="6.1.0-28-amd64")
    assert plan.source == "distro" and plan.flavor == "proprietary" and plan.headers == ["linux-headers-6.1.0-28-amd64"]
    content = plan.files[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode()
    assert "Suites: bookworm\nComponents: contrib non-free non-free-firmware\n" in content


def test_installed_driver_from_captured_dpkg_query():
    runner = FakeRunner({tuple(QUERY): (1, fixture_text("dpkg/query-nvidia-debian13.txt"), "")})
    found = nd.installed_set(_packages.Apt(runner))
    assert nd.driver_version_of(found) == "550.163.01"
    assert found["nvidia-persistenced"] == ("550.163.01-1", False)
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
    plan = layout(params(branch="535", flavor="open"), root, kernel="6.1.0-28-amd64")
    names = plan.packages + plan.headers
    runner = FakeRunner({("apt-cache", "policy", *names): (0, policy, "")})
    with pytest.raises(ModuleError, match=r"mismatched versions .*nvidia-driver 535\.309\.01, nvidia-open-kernel-dkms 535\.261\.03"):
        nd.check_candidates(_packages.Apt(runner), plan, names, params(branch="535", flavor="open"), DEBIAN12, False, [])


def test_debian12_branch_check_against_the_archive(debian, monkeypatch):
    root = debian("12")
    plan = layout(params(branch="535"), root, kernel="6.1.0-28-amd64")
    plan = plan._replace(branch="550")  # as if Debian had been asked for another branch through the table's back
    names = plan.packages
    runner = FakeRunner({("apt-cache", "policy", *names): (0, fixture_text("apt/policy-nvidia-debian12.txt"), "")})
    with pytest.raises(ModuleError, match=r"offers driver 535\.309\.01 \(branch 535\), not branch 550"):
        nd.check_candidates(_packages.Apt(runner), plan, names, params(branch="550"), DEBIAN12, False, [])


def test_missing_headers_are_a_warning_in_a_container_only(debian):
    root = debian("12", {".dockerenv": ""})
    plan = layout(params(branch="535"), root, kernel="6.18.44-custom")
    names = plan.packages + plan.headers
    policy = fixture_text("apt/policy-nvidia-debian12.txt") + "linux-headers-6.18.44-custom:\n  Installed: (none)\n  Candidate: (none)\n"
    runner = FakeRunner({("apt-cache", "policy", *names): (0, policy, "")})
    warnings: list = []
    skip, dummy = nd.check_candidates(_packages.Apt(runner), plan, names, params(branch="535"), DEBIAN12,
                                      bool(_distro.container_fact(root)), warnings)
    assert skip == ["linux-headers-6.18.44-custom"]
    assert "skipped in this container" in warnings[0]
    os.remove(root.path(".dockerenv"))  # the same tree, now a host
    with pytest.raises(ModuleError, match="DKMS cannot build the module"):
        nd.check_candidates(_packages.Apt(runner), plan, names, params(branch="535"), DEBIAN12,
                            bool(_distro.container_fact(root)), [])


def test_a_provisioned_host_reruns_with_two_commands_and_no_change(debian, monkeypatch):
    kernel = "6.1.0-28-amd64"
    components = layout(params(branch="535"), debian("12"), kernel=kernel).files
    root = debian("12", {
        _nvidia_repo.DEBIAN_COMPONENTS_FILE.lstrip("/"): components[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode(),
        nd.BLACKLIST_FILE.lstrip("/"): nd.BLACKLIST.decode(),
        nd.UNATTENDED_FILE.lstrip("/"): nd.UNATTENDED.decode(),
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
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")
    result = run_worker(nd.Driver, make_host(params(branch="535"), runner, sysroot=root))
    assert result["changed"] is False and result["actions"] == []
    assert runner.calls == [query, ["/usr/bin/systemctl", "is-enabled", "nvidia-persistenced.service"]]
    assert result["installed_version"] == "535.309.01"
    assert result["reboot_required"] is True and result["reboot_reasons"] == ["nvidia driver 535.309.01 installed, not loaded"]
    assert result["branch_status"] == {"designation": "long-term support branch", "eol": "2026-06", "eol_passed": True}
    assert "end of life" in result["warnings"][0]
    assert result["source"] == "distro" and result["source_reason"] == "Debian GNU/Linux 12 (bookworm) carries branch 535, the branch asked"


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
    key = fixture_text("openpgp/test-rsa3072-sha512.asc")  # a test key, made for the tests (fixtures/openpgp/README.md)
    root = debian("12", {"srv/keys/nvidia.asc": key})
    monkeypatch.setattr(platform, "release", lambda: "6.1.0-28-amd64")
    installed = "".join(f"{n}\thi \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"))
    installed += "linux-headers-6.1.0-28-amd64\thi \t6.1.123-1\n"  # held by the administrator: not the driver's to unhold
    query = QUERY + ["linux-headers-6.1.0-28-amd64"]
    runner = FakeRunner({tuple(query): (0, installed, "")}, programs={})
    p = params(branch="550", source="nvidia_repo", repo_url="https://mirror.example/cuda/debian12/x86_64",
               repo_key="/srv/keys/nvidia.asc", persistence=False, blacklist_nouveau=False)
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")
    result = run_worker(nd.Driver, make_host(p, runner, check_mode=True, sysroot=root))
    assert result["changed"] is True
    actions = result["actions"]
    assert actions[0] == (
        "write the package sources: write /etc/apt/keyrings/mlhost-nvidia-cuda.asc, "
        "write /etc/apt/sources.list.d/mlhost-nvidia-cuda.sources, write /etc/apt/preferences.d/mlhost-nvidia-cuda"
    )
    assert "driver change (branch 535 -> 550): unhold nvidia-driver, nvidia-kernel-dkms, nvidia-smi, upgrade, hold again" in actions
    assert "install cuda-drivers-550" in actions
    assert any(a.startswith("hold ") and "cuda-drivers-550" in a for a in actions)
    assert [d["before_header"] for d in result["diff"]] == [
        "/etc/apt/keyrings/mlhost-nvidia-cuda.asc", "/etc/apt/sources.list.d/mlhost-nvidia-cuda.sources",
        "/etc/apt/preferences.d/mlhost-nvidia-cuda", nd.UNATTENDED_FILE]
    assert any("checked after the lists are refreshed" in w for w in result["warnings"])
    assert not __import__("os").path.exists(root.path("etc/apt/sources.list.d/mlhost-nvidia-cuda.sources"))
    assert len(runner.calls) == 1


SIMULATION_535 = "".join(
    f"Inst {name} ({version} Debian:12.12/stable [amd64])\n"
    for name, version in [("nvidia-alternative", "535.309.01-0+deb12u1"), ("libcuda1", "535.309.01-0+deb12u1"),
                          ("nvidia-kernel-dkms", "535.309.01-0+deb12u1"), ("nvidia-driver", "535.309.01-0+deb12u1"),
                          ("nvidia-smi", "535.309.01-0+deb12u1"), ("nvidia-persistenced", "535.171.04-1~deb12u1"),
                          ("linux-headers-6.1.0-28-amd64", "6.1.123-1"), ("dkms", "3.0.10-8+deb12u1")]
)


def fresh_debian12(debian, monkeypatch, kernel="6.1.0-28-amd64"):
    """A Debian 12 host with the components file in place and fresh package lists, no driver installed."""
    components = layout(params(branch="535"), debian("12"), kernel=kernel).files
    root = debian("12", {_nvidia_repo.DEBIAN_COMPONENTS_FILE.lstrip("/"): components[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode()})
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    monkeypatch.setattr(platform, "release", lambda: kernel)
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")
    return root


def install_responses(kernel="6.1.0-28-amd64"):
    names = ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced", f"linux-headers-{kernel}"]
    query = tuple(QUERY + [f"linux-headers-{kernel}"])
    apt = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]
    policy = fixture_text("apt/policy-nvidia-debian12.txt") + f"linux-headers-{kernel}:\n  Installed: (none)\n  Candidate: 6.1.123-1\n"
    after = "".join(f"{n}\tii \t{v}\n" for n, v in _packages.parse_apt_simulation_versions(SIMULATION_535).items())
    held = sorted(["libcuda1", "nvidia-alternative", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-persistenced", "nvidia-smi"])
    systemctl = "/usr/bin/systemctl"
    responses = {
        query: [(1, "", ""), (0, after, "")],
        ("apt-cache", "policy", *names): (0, policy, ""),
        tuple(apt + ["-s", "--no-install-recommends", "install", *names]): (0, SIMULATION_535, ""),
        tuple(apt + ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                     "--no-install-recommends", "install", *names]): (0, "", ""),
        ("apt-mark", "hold", *held): (0, "", ""),
        (systemctl, "is-enabled", nd.PERSISTENCE_UNIT): (1, "disabled\n", ""),
        (systemctl, "enable", nd.PERSISTENCE_UNIT): (0, "", ""),
        ("/usr/sbin/update-initramfs", "-u", "-k", "all"): (0, "", ""),
    }
    return responses, {"systemctl": systemctl, "update-initramfs": "/usr/sbin/update-initramfs"}


def test_check_mode_is_the_plan_the_real_run_carries_out(debian, monkeypatch):
    """Same host, same options: check mode's changed, actions, packages and version are what the real run then does."""
    root = fresh_debian12(debian, monkeypatch)
    responses, programs = install_responses()
    check_runner = FakeRunner(responses, programs)
    check = run_worker(nd.Driver, make_host(params(branch="535"), check_runner, check_mode=True, sysroot=root))
    assert not os.path.exists(root.path(nd.BLACKLIST_FILE.lstrip("/")))
    assert [c[0] for c in check_runner.calls] == ["dpkg-query", "apt-cache", "apt-get", "/usr/bin/systemctl"]
    responses, programs = install_responses()
    real_runner = FakeRunner(responses, programs)
    real = run_worker(nd.Driver, make_host(params(branch="535"), real_runner, sysroot=root))
    for key in ("changed", "actions", "packages", "installed_version", "reboot_required", "source", "flavor", "planned_branch"):
        assert check[key] == real[key], key
    assert real["changed"] is True and real["installed_version"] == "535.309.01"
    assert real["packages"] == ["libcuda1", "nvidia-alternative", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-persistenced",
                                "nvidia-smi"]
    assert real["actions"] == [
        "refresh the package lists when older than 86400 s",
        "install nvidia-driver nvidia-kernel-dkms nvidia-smi nvidia-persistenced linux-headers-6.1.0-28-amd64",
        "hold libcuda1 nvidia-alternative nvidia-driver nvidia-kernel-dkms nvidia-persistenced nvidia-smi",
        f"write {nd.BLACKLIST_FILE}",
        "rebuild the initramfs (update-initramfs)",
        f"write {nd.UNATTENDED_FILE}",
        f"enable {nd.PERSISTENCE_UNIT}",
    ]
    # The real run is the plan's commands, then exactly the plan's steps, then one query of the result.
    assert real_runner.calls[:4] == check_runner.calls
    assert [c[:2] if c[0] != "apt-get" else c[-6:-5] for c in real_runner.calls[4:]] == [
        ["install"], ["apt-mark", "hold"], ["/usr/sbin/update-initramfs", "-u"], ["/usr/bin/systemctl", "enable"],
        ["dpkg-query", "-W"]]
    with open(root.path(nd.BLACKLIST_FILE.lstrip("/")), "rb") as handle:
        assert handle.read() == nd.BLACKLIST


def test_check_mode_of_a_removal_is_what_the_removal_does(debian, monkeypatch):
    root = fresh_debian12(debian, monkeypatch)
    os.makedirs(os.path.dirname(root.path(nd.BLACKLIST_FILE.lstrip("/"))))
    with open(root.path(nd.BLACKLIST_FILE.lstrip("/")), "wb") as handle:
        handle.write(nd.BLACKLIST)
    query = tuple(QUERY)
    installed = "".join(f"{n}\thi \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "nvidia-smi", "libcuda1"))

    def responses():
        return {query: [(0, installed, ""), (1, "", "")],
                ("apt-mark", "unhold", "libcuda1", "nvidia-driver", "nvidia-smi"): (0, "", ""),
                ("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", "remove", "libcuda1", "nvidia-driver", "nvidia-smi"): (0, "", "")}

    check = run_worker(nd.Driver, make_host(params(state="absent"), FakeRunner(responses()), check_mode=True, sysroot=root))
    real_runner = FakeRunner(responses())
    real = run_worker(nd.Driver, make_host(params(state="absent"), real_runner, sysroot=root))
    assert check["changed"] is real["changed"] is True and check["actions"] == real["actions"] == [
        "unhold libcuda1 nvidia-driver nvidia-smi", "remove libcuda1 nvidia-driver nvidia-smi", f"remove {nd.BLACKLIST_FILE}"]
    assert not os.path.exists(root.path(nd.BLACKLIST_FILE.lstrip("/")))
    assert real["installed_version"] is None and real["packages"] == []


def test_rocky9_plans_the_module_stream_and_holds_after_the_install(tree, monkeypatch):
    """dnf: no package lists to ask in the plan. After the refresh the branch step finds the 550-dkms stream in the
    repository's module list and enables it, checks the candidates, takes the stream's 550 version by name and
    simulates the install; then the install, then versionlock of the driver."""
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/rocky9"), "proc/modules": "", "usr/bin/dnf": "",
                             "proc/sys/kernel/arch": "x86_64\n",
                             "srv/keys/nvidia.asc": fixture_text("openpgp/test-rsa3072-sha512.asc")})))
    monkeypatch.setattr(platform, "release", lambda: "5.14.0-427.el9.x86_64")
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")
    query = ("rpm", "-q", "-a", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", *nd.RPM_DRIVER_GLOBS,
             "python3-dnf-plugin-versionlock", "kernel-devel-5.14.0-427.el9.x86_64", "kernel-headers-5.14.0-427.el9.x86_64")
    driver = ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-latest-dkms"]
    names = driver + ["python3-dnf-plugin-versionlock", "kernel-devel-5.14.0-427.el9.x86_64", "kernel-headers-5.14.0-427.el9.x86_64"]
    specs = [f"{n}-550.54.14-1.el9" for n in driver] + names[3:]
    after = fixture_text("rpm/rocky9-550.54.14.txt")
    offered = "".join(f"{n}\t550.54.14-1.el9\n" for n in driver) + "".join(f"{n}\t1.0-1.el9\n" for n in names[3:])
    streams = fixture_text("dnf/nvidia-rhel9-module-list.txt").replace("580-dkms ", "550-dkms ")
    transaction = "Installing:\n" + "".join(f" {n}  x86_64  3:550.54.14-1.el9  cuda-rhel9-x86_64  1 M\n" for n in driver)

    def runner():
        return FakeRunner({
            query: [(1, "", ""), (0, after, "")],
            ("dnf", "-q", "makecache", "--setopt=metadata_expire=86400"): (0, "", ""),
            MODULE_LIST: (0, streams, ""),
            ("dnf", "-y", "-q", "module", "reset", "nvidia-driver"): (0, "", ""),
            ("dnf", "-y", "-q", "module", "enable", "nvidia-driver:550-dkms"): (0, "", ""),
            CANDIDATES + tuple(names): (0, offered, ""),
            ALL_VERSIONS + tuple(driver): (0, "".join(f"{n}\t3:550.54.14-1.el9\n" for n in driver), ""),
            ASSUMENO + tuple(specs): (1, transaction, "Operation aborted.\n"),
            ("dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install", *specs): (0, "", ""),
            ("dnf", "-q", "versionlock", "list"): (0, "", ""),
            ("dnf", "-q", "versionlock", "add", "kmod-nvidia-latest-dkms", "nvidia-driver", "nvidia-driver-cuda"): (0, "", ""),
        })

    p = params(branch="550", source="nvidia_repo", repo_key="/srv/keys/nvidia.asc", persistence=False, blacklist_nouveau=False)
    check_runner = runner()
    check = run_worker(nd.Driver, make_host(p, check_runner, check_mode=True, sysroot=root))
    assert check["pkg_mgr"] == "dnf" and check_runner.calls == [list(query)]
    assert check["actions"][1:] == [
        "refresh the package lists (the sources changed)",
        "hold dnf to branch 550: enable dnf module stream nvidia-driver:550-dkms where the repository has it, else install "
        "nvidia-driver-pinning-550 where it has that; then install the newest 550 version it offers, by its exact version "
        "(versionlocked), after checking that the packages dnf would install are on the branch",
        "install " + " ".join(names),
        "hold nvidia-driver nvidia-driver-cuda kmod-nvidia-latest-dkms and the driver's other packages of its version, once installed",
    ]
    real_runner = runner()
    real = run_worker(nd.Driver, make_host(p, real_runner, sysroot=root))
    assert real["actions"] == check["actions"] and real["changed"] is check["changed"] is True
    assert [c[:4] for c in real_runner.calls[1:]] == [
        ["dnf", "-q", "makecache", "--setopt=metadata_expire=86400"], list(MODULE_LIST[:4]), ["dnf", "-y", "-q", "module"],
        ["dnf", "-y", "-q", "module"], list(CANDIDATES[:4]), list(ALL_VERSIONS[:4]), list(ASSUMENO[:4]),
        ["dnf", "-y", "-q", "--setopt=install_weak_deps=False"],
        ["rpm", "-q", "-a", "--qf"], ["dnf", "-q", "versionlock", "list"], ["dnf", "-q", "versionlock", "add"], ["rpm", "-q", "-a", "--qf"]]
    assert real["installed_version"] == "550.54.14"
    assert os.path.exists(root.path(_nvidia_repo.DNF_REPO.lstrip("/")))


def test_a_container_rerun_without_headers_in_the_sources_changes_nothing(debian, monkeypatch):
    """Found by the nvidia scenario: the headers the container's sources lack are skipped, not a change on every rerun."""
    kernel = "6.18.44-custom"
    components = layout(params(branch="535"), debian("12"), kernel=kernel).files
    root = debian("12", {".dockerenv": "", nd.BLACKLIST_FILE.lstrip("/"): nd.BLACKLIST.decode(),
                         nd.UNATTENDED_FILE.lstrip("/"): nd.UNATTENDED.decode(),
                         _nvidia_repo.DEBIAN_COMPONENTS_FILE.lstrip("/"): components[_nvidia_repo.DEBIAN_COMPONENTS_FILE].decode()})
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    monkeypatch.setattr(platform, "release", lambda: kernel)
    installed = "".join(f"{n}\thi \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"))
    installed += "nvidia-persistenced\thi \t535.171.04-1~deb12u1\n"
    names = ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "nvidia-persistenced", f"linux-headers-{kernel}"]
    policy = fixture_text("apt/policy-nvidia-debian12.txt") + f"linux-headers-{kernel}:\n  Installed: (none)\n  Candidate: (none)\n"
    runner = FakeRunner({tuple(QUERY + [f"linux-headers-{kernel}"]): (0, installed, ""),
                         ("apt-cache", "policy", f"linux-headers-{kernel}", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi"):
                         (0, policy, ""),
                         ("/usr/bin/systemctl", "is-enabled", nd.PERSISTENCE_UNIT): (0, "enabled\n", "")},
                        programs={"systemctl": "/usr/bin/systemctl"})
    result = run_worker(nd.Driver, make_host(params(branch="535"), runner, sysroot=root))
    assert result["changed"] is False and result["actions"] == [], result["actions"]
    assert names[-1] not in result["packages"]


def test_unattended_upgrades_drop_in_adds_to_the_admins_list_and_goes_with_state_absent(debian, monkeypatch):
    """The drop-in is a file of our own with anchored patterns; hold=false keeps it; the option off or absent removes it."""
    text = nd.UNATTENDED.decode()
    assert text.startswith("// Managed by mlinfra.mlhost") and "Unattended-Upgrade::Package-Blacklist {" in text
    assert all(f'    "{p}";' in text for p in ("nvidia-", "libnvidia-", "libcuda", "cuda-"))
    assert nd.UNATTENDED_FILE.startswith("/etc/apt/apt.conf.d/51") and "50unattended-upgrades" not in nd.UNATTENDED_FILE
    root = debian("12", {nd.UNATTENDED_FILE.lstrip("/"): nd.UNATTENDED.decode()})
    steps: list = []
    driver = nd.Driver(make_host(params(exclude_from_automatic_upgrades=False), FakeRunner({}), sysroot=root))
    driver._plan_files({nd.UNATTENDED_FILE: None}, steps)
    assert [s["action"] for s in steps] == [f"remove {nd.UNATTENDED_FILE}"]


# NVIDIA's packaging from R590 (stand-in shapes: tests/testbed/nvidia_standin_repo.sh; real apt against them: the
# nvidia_repo scenario, and the captures in fixtures/nvidia_standin/).


class Candidates:
    """A package manager that answers candidates() only (what apt-cache policy would say)."""

    name = "apt"

    def __init__(self, known):
        self.known = known
        self.asked = []

    def candidates(self, names):
        self.asked.append(list(names))
        return {n: self.known.get(n) for n in names}

    def offered(self, prefix):
        return {n: v for n, v in self.known.items() if n.startswith(prefix) and v}


@pytest.mark.parametrize(
    "flavor, branch, packages, pin, required",
    [
        ("open", "590", ["nvidia-open"], "nvidia-driver-pinning-590", True),
        ("proprietary", "595", ["cuda-drivers"], "nvidia-driver-pinning-595", True),
        ("open", "580", ["nvidia-open-580"], "nvidia-driver-pinning-580", False),
        ("proprietary", "550", ["cuda-drivers-550"], "nvidia-driver-pinning-550", False),
        ("open", None, ["nvidia-open"], None, False),
    ],
)
def test_from_r590_the_branch_is_held_by_nvidias_pinning_package(debian, flavor, branch, packages, pin, required):
    root = debian("12", {"srv/k.asc": fixture_text("openpgp/test-rsa3072-sha512.asc")})
    p = params(source="nvidia_repo", flavor=flavor, branch=branch or "", repo_key="/srv/k.asc")
    got = nd.make_layout(p, root, _distro.distro_facts(root), _packages.Apt(FakeRunner({})), lambda url: b"", "6.1.0-28-amd64")
    assert got.packages == packages and got.pin == pin and got.pin_required is required


def test_rhel_and_the_distribution_have_no_pinning_package(debian):
    assert layout(params(branch="535"), debian("12")).pin is None
    names, versioned, stream = nd.driver_packages(ROCKY9, "nvidia_repo", "open", "590", "5.14.0")
    assert stream == "nvidia-driver:590-open" and "nvidia-open" not in names


def repo_layout(debian, branch, flavor="open"):
    root = debian("12", {"srv/k.asc": fixture_text("openpgp/test-rsa3072-sha512.asc")})
    p = params(source="nvidia_repo", flavor=flavor, branch=branch, repo_key="/srv/k.asc", kernel_headers=False)
    return nd.make_layout(p, root, _distro.distro_facts(root), _packages.Apt(FakeRunner({})), lambda url: b"", "6.1.0-28-amd64"), p


def test_a_repository_without_the_r590_pinning_package_is_refused_naming_it(debian):
    lay, p = repo_layout(debian, "590")
    pm = Candidates({"nvidia-open": "595.45.04-1"})
    with pytest.raises(ModuleError, match="has no nvidia-driver-pinning-590: from R590 .*holds apt to branch 590. Mirror it"):
        nd.check_candidates(pm, lay, ["nvidia-open"], p, DEBIAN12, False, [], pin_pending=True)
    assert pm.asked == [["nvidia-open", "nvidia-driver-pinning-590"]]


def test_a_branch_the_repository_lacks_is_refused_naming_the_branches_it_offers(debian):
    """The branch names of the stand-in repository, as real apt-cache pkgnames listed them (toolkits_offered.txt)."""
    text = fixture_text("nvidia_standin/toolkits_offered.txt")
    names = []
    for command in ("apt-cache pkgnames nvidia-driver-pinning-", "apt-cache pkgnames cuda-drivers-"):
        names += text.split(f"$ {command}\n", 1)[1].split("[exit status", 1)[0].split()
    assert names == ["nvidia-driver-pinning-580", "nvidia-driver-pinning-590", "nvidia-driver-pinning-595", "cuda-drivers-580"]
    known = {n: "1-1" for n in names}
    lay, p = repo_layout(debian, "610")
    with pytest.raises(ModuleError, match="has no nvidia-driver-pinning-610: .*take the newest driver; it offers driver branches "
                                          "580, 590, 595. Nothing was installed."):
        nd.check_candidates(Candidates(dict(known, **{"nvidia-open": "595.45.04-1"})), lay, ["nvidia-open"], p, DEBIAN12, False, [],
                            pin_pending=True)
    lay, p = repo_layout(debian, "570", flavor="proprietary")
    with pytest.raises(ModuleError) as info:
        nd.check_candidates(Candidates(known), lay, ["cuda-drivers-570"], p, DEBIAN12, False, [], pin_pending=False)
    assert info.value.msg == ("NVIDIA's repository (or the mirror) has no cuda-drivers-570 for this host; it offers driver branches "
                              "580, 590, 595. Ask for a branch it carries, or point repo_url at a mirror that carries this one. "
                              "Nothing was installed.")


def test_with_the_pin_pending_the_unpinned_candidate_is_not_held_against_the_branch(debian):
    """Before the pin is in, apt offers the newest (595); the branch is checked once the pin is installed."""
    lay, p = repo_layout(debian, "590")
    warnings: list = []
    skip, offered = nd.check_candidates(Candidates({"nvidia-open": "595.45.04-1", "nvidia-driver-pinning-590": "590-1"}), lay,
                                        ["nvidia-open"], p, DEBIAN12, False, warnings, pin_pending=True)
    assert skip == [] and offered["nvidia-open"] == "595.45.04-1"
    assert any("nvidia-driver-pinning-590 is installed first" in w for w in warnings)


def test_with_the_pin_in_place_a_candidate_outside_the_branch_is_refused(debian):
    """An administrator's pin of higher priority (or a broken mirror) would still move apt past the branch."""
    lay, p = repo_layout(debian, "590")
    with pytest.raises(ModuleError, match="outside branch 590 \\(nvidia-open 595.45.04\\).*check /etc/apt/preferences.d"):
        nd.check_candidates(Candidates({"nvidia-open": "595.45.04-1"}), lay, ["nvidia-open"], p, DEBIAN12, False, [])
    skip, dummy = nd.check_candidates(Candidates({"nvidia-open": "590.48.01-1"}), lay, ["nvidia-open"], p, DEBIAN12, False, [])
    assert skip == []


def test_before_r590_a_missing_pinning_package_is_skipped_and_the_simulated_install_is_checked(debian):
    """Debian's cuda-drivers-580 depends '>=' and pulls 595 components when nothing pins (fixtures/nvidia_standin capture)."""
    lay, p = repo_layout(debian, "580", flavor="proprietary")
    skip, dummy = nd.check_candidates(Candidates({"cuda-drivers-580": "580.95.05-1"}), lay, ["cuda-drivers-580"], p, DEBIAN12,
                                      False, [], pin_pending=True)
    assert skip == ["nvidia-driver-pinning-580"]
    wrong = nd.out_of_branch(installed_in_capture("nvidia_standin/cuda_drivers_580_unpinned.txt"), "580")
    assert wrong and all(v.startswith("595.") for v in wrong.values()) and "cuda-drivers-580" not in wrong
    with pytest.raises(ModuleError, match="would install driver packages outside branch 580 .*has no nvidia-driver-pinning-580"):
        nd.refuse_out_of_branch(lay, wrong, "would install", False)
    assert nd.out_of_branch(installed_in_capture("nvidia_standin/cuda_drivers_580_pinned.txt"), "580") == {}


def installed_in_capture(name):
    """name -> version of the dpkg-query listing at the end of a stand-in capture."""
    text = fixture_text(name)
    listing = text.split("$ dpkg-query -W", 1)[1].splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in listing if len(line.split()) >= 2 and not line.startswith(("[", "$"))}


def gpu(device, arch, pci="0000:17:00.0"):
    return {"pci": pci, "device_id": device, "name": f"GPU {device}", "architecture": arch}


@pytest.mark.parametrize(
    "flavor, branch, gpus, expected",
    [
        ("auto", "580", [gpu("1db1", "volta")], "proprietary"),        # before Turing: proprietary only
        ("auto", "535", [gpu("2901", "blackwell")], "open"),           # Blackwell: open only, whatever the branch
        ("auto", "580", [gpu("2330", "hopper")], "open"),              # NVIDIA's default from 560
        ("auto", "550", [gpu("2330", "hopper")], "proprietary"),
        ("auto", "580", [], "open"),
        ("open", "580", [gpu("1eb8", "turing")], "open"),
    ],
)
def test_the_flavor_follows_the_gpus(flavor, branch, gpus, expected):
    assert nd.pick_flavor(flavor, branch, gpus) == expected


@pytest.mark.parametrize(
    "flavor, branch, gpus, words",
    [
        ("auto", "590", [gpu("15f8", "pascal")], "Driver branch 590 does not support this host's GPU 15f8 \\(pascal.*Ask for branch 580"),
        ("auto", "595", [gpu("1db1", "volta"), gpu("2330", "hopper", "0000:18:00.0")], "dropped Maxwell, Pascal and Volta"),
        ("open", "580", [gpu("1db1", "volta")], "flavor open cannot drive .*Turing and newer GPUs only"),
        ("proprietary", "580", [gpu("2901", "blackwell")], "flavor proprietary cannot drive .*open kernel modules only"),
        ("auto", "580", [gpu("1db1", "volta"), gpu("2901", "blackwell", "0000:18:00.0")], "no one driver flavor runs both"),
    ],
)
def test_a_branch_or_flavor_the_gpus_cannot_run_is_refused(flavor, branch, gpus, words):
    with pytest.raises(ModuleError, match=words) as info:
        nd.pick_flavor(flavor, branch, gpus)
    assert info.value.msg.endswith("Nothing was changed.")


def test_the_gpus_are_read_from_pci_before_anything_changes(debian, tree):
    """A Tesla P100 on the PCI bus (a fixture tree) and branch 590 asked: refused in the plan, no command run."""
    root = debian("12", {"sys/bus/pci/devices/0000:17:00.0/vendor": "0x10de\n", "sys/bus/pci/devices/0000:17:00.0/device": "0x15f8\n",
                         "sys/bus/pci/devices/0000:17:00.0/class": "0x030200\n"})
    runner = FakeRunner({})
    with pytest.raises(ModuleError, match="NVIDIA Tesla P100 PCIe 16GB \\(pascal, 0000:17:00.0\\)"):
        run_worker(nd.Driver, make_host(params(branch="590", source="nvidia_repo"), runner, sysroot=root))
    assert runner.calls == []


SECURE_BOOT_ON = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def secure_boot_driver(debian, extra, responses, programs):
    root = debian("12", {SECURE_BOOT_ON: "\x06\x00\x00\x00\x01", **extra})
    driver = nd.Driver(make_host(params(branch="535"), FakeRunner(responses, programs), sysroot=root))
    return driver


def test_secure_boot_without_a_mok_certificate_is_refused_before_the_install(debian):
    driver = secure_boot_driver(debian, {}, {}, {})
    with pytest.raises(ModuleError, match="Secure Boot is enabled, and no Machine Owner Key certificate .*/var/lib/dkms/mok.pub.*"
                                          "mokutil --import /var/lib/dkms/mok.pub.*Nothing was installed"):
        driver._check_secure_boot(False)


def test_secure_boot_with_a_mok_that_is_not_enrolled_is_refused_with_mokutils_words(debian):
    responses = {("/usr/bin/mokutil", "--test-key", "/var/lib/dkms/mok.pub"): (0, "/var/lib/dkms/mok.pub is not enrolled\n", "")}
    driver = secure_boot_driver(debian, {"var/lib/dkms/mok.pub": "cert"}, responses, {"mokutil": "/usr/bin/mokutil"})
    with pytest.raises(ModuleError, match="MOK certificate /var/lib/dkms/mok.pub is not enrolled \\(/var/lib/dkms/mok.pub is not enrolled\\)"):
        driver._check_secure_boot(False)


def test_secure_boot_with_an_enrolled_mok_goes_on_and_a_container_is_not_read(debian):
    responses = {("/usr/bin/mokutil", "--test-key", "/var/lib/dkms/mok.pub"): (1, "/var/lib/dkms/mok.pub is already enrolled\n", "")}
    driver = secure_boot_driver(debian, {"var/lib/dkms/mok.pub": "cert"}, responses, {"mokutil": "/usr/bin/mokutil"})
    driver._check_secure_boot(False)
    assert driver.secure_boot == "enabled"
    container = secure_boot_driver(debian, {}, {}, {})
    container._check_secure_boot(True)
    assert container.secure_boot == "unknown"


@pytest.mark.parametrize("text, expected", [("x is already enrolled", True), ("x is not enrolled", False), ("", None),
                                            ("Failed to read x", None)])
def test_mokutil_test_key_output(text, expected):
    assert nd.mok_enrolled(text) is expected


# dnf: the branch held as NVIDIA's RPM repositories allow (streams on EL8/9 while they last, else exact versions) ----
FEDORA41 = {"id": "fedora", "version": "41", "major": "41", "family": "redhat", "name": "Fedora Linux 41"}
CANDIDATES = ("dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n")
ALL_VERSIONS = ("dnf", "-q", "repoquery", "--qf", "%{name}\\t%{epoch}:%{version}-%{release}\\n")
MODULE_LIST = ("dnf", "-q", "module", "list", "nvidia-driver")
ASSUMENO = ("dnf", "--assumeno", "--setopt=install_weak_deps=False", "install")
EL9_OPEN = ["nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"]


def dnf_layout(distro, flavor, branch):
    names, versioned, stream = nd.driver_packages(distro, "nvidia_repo", flavor, branch, "5.14.0-427.el9.x86_64")
    return nd.Layout("nvidia_repo", "test", flavor, branch, names, versioned, [], stream, None, False, {}, [])


def latest(text, names):
    """The --latest-limit 1 answer for ``names`` from an all-versions capture (the last version printed of each)."""
    found = _packages.parse_dnf_versions(text, names)
    return "".join(f"{n}\t{found[n][-1].split(':', 1)[-1]}\n" for n in names if n in found)


def test_dnf_package_names_per_distribution():
    assert nd.driver_packages(ROCKY9, "nvidia_repo", "open", None, "k") == (EL9_OPEN, EL9_OPEN, "nvidia-driver:open-dkms")
    assert nd.driver_packages(ROCKY9, "nvidia_repo", "proprietary", None, "k")[2] == "nvidia-driver:latest-dkms"
    assert nd.driver_packages(ALMA10, "nvidia_repo", "proprietary", "590", "k") == (["cuda-drivers"], ["cuda-drivers"], None)
    assert nd.driver_packages(FEDORA41, "nvidia_repo", "open", "590", "k") == (["nvidia-open"], ["nvidia-open"], None)
    assert nd.modular(ROCKY9) and not nd.modular(ALMA10) and not nd.modular(FEDORA41) and not nd.modular(DEBIAN12)
    assert not nd.modular(dict(FEDORA41, major="9"))  # Fedora is never modular here, whatever its number


def test_the_newest_version_of_the_branch_that_every_component_offers():
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    versions = _packages.parse_dnf_versions(text, EL9_OPEN)
    assert nd.pick_branch_version(versions, EL9_OPEN, "595") == {n: "595.71.05-1.el9" for n in EL9_OPEN}
    assert nd.pick_branch_version(versions, EL9_OPEN, "590") == {n: "590.48.01-1.el9" for n in EL9_OPEN}
    assert nd.pick_branch_version(versions, EL9_OPEN, "595", "595.45.04") == {n: "595.45.04-1.el9" for n in EL9_OPEN}
    assert nd.pick_branch_version(versions, EL9_OPEN, "580") is None
    assert nd.pick_branch_version(versions, EL9_OPEN, "595", "595.58.03") is None
    # A component missing the newest version: the newest version all of them offer.
    partial = dict(versions, **{"kmod-nvidia-open-dkms": ["3:595.45.04-1.el9"]})
    assert nd.pick_branch_version(partial, EL9_OPEN, "595")["nvidia-driver"] == "595.45.04-1.el9"
    # A rebuilt release of one version wins over the first; 595.100 sorts after 595.71 (numbers, not text).
    assert nd.pick_branch_version({"x": ["3:595.71.05-1.el9", "3:595.71.05-2.el9", "3:595.100.1-1.el9"]}, ["x"], "595") == {
        "x": "595.100.1-1.el9"}
    assert nd.pick_branch_version({}, ["x"], "595") is None
    assert nd.pick_branch_version({"x": ["garbage", "1:latest-1"]}, ["x"], "595") is None


def test_rhel9_with_the_branchs_stream_enables_it_and_installs_the_streams_version():
    """Captured stream list (streams up to 580): 580-open is enabled, then the 580 versions it offers are taken."""
    layout = dnf_layout(ROCKY9, "open", "580")
    after = fixture_text("dnf/nvidia-rhel9-repoquery-580-open.txt")
    specs = [f"{n}-580.105.08-1.el9" for n in EL9_OPEN]
    runner = FakeRunner({
        MODULE_LIST: (0, fixture_text("dnf/nvidia-rhel9-module-list.txt"), ""),
        ("dnf", "-y", "-q", "module", "reset", "nvidia-driver"): (0, "", ""),
        ("dnf", "-y", "-q", "module", "enable", "nvidia-driver:580-open"): (0, "", ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(after, EL9_OPEN), ""),
        ALL_VERSIONS + tuple(EL9_OPEN): (0, after, ""),
        ASSUMENO + tuple(specs): (1, fixture_text("dnf/nvidia-rhel9-assumeno-580-open.txt"), "Operation aborted.\n"),
    })
    warnings = []
    skip, got = nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="580"), ROCKY9, list(EL9_OPEN), list(EL9_OPEN),
                                   False, warnings)
    assert skip == [] and got == dict(zip(EL9_OPEN, specs)) and warnings == []
    assert [c[:5] for c in runner.calls][:3] == [list(MODULE_LIST), ["dnf", "-y", "-q", "module", "reset"],
                                                 ["dnf", "-y", "-q", "module", "enable"]]


ENABLED = ("dnf", "-q", "module", "list", "--enabled", "nvidia-driver")
NONE_ENABLED = (1, "", "Error: No matching Modules to list\n")  # real dnf 4.14 with no stream enabled


@pytest.mark.parametrize("enabled", [NONE_ENABLED, (0, fixture_text("dnf/nvidia-rhel9-module-list-enabled-580-open.txt"), "")])
def test_rhel9_after_the_streams_installs_the_branchs_exact_version(enabled):
    """Streams end at 580 (captured): branch 590 has none, no pinning package; the 590 version is taken by name. An
    enabled 580-open stream (a host on 580 moving to 590) hides the 590 packages: the module is reset first."""
    layout = dnf_layout(ROCKY9, "open", "590")
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    specs = [f"{n}-590.48.01-1.el9" for n in EL9_OPEN]
    runner = FakeRunner({
        MODULE_LIST: (0, fixture_text("dnf/nvidia-rhel9-module-list.txt"), ""),
        ENABLED: enabled,
        ("dnf", "-y", "-q", "module", "reset", "nvidia-driver"): (0, "", ""),
        CANDIDATES + ("nvidia-driver-pinning-590",): (0, "", ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(text, EL9_OPEN), ""),
        ALL_VERSIONS + tuple(EL9_OPEN): (0, text, ""),
        ASSUMENO + tuple(specs): (1, fixture_text("dnf/nvidia-rhel9-assumeno-590.txt"), "Operation aborted.\n"),
    })
    warnings = []
    skip, got = nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590"), ROCKY9, list(EL9_OPEN), list(EL9_OPEN),
                                   False, warnings)
    assert got == dict(zip(EL9_OPEN, specs))
    changed = [c for c in runner.calls if c[:4] == ["dnf", "-y", "-q", "module"]]
    if enabled is NONE_ENABLED:
        assert changed == [] and warnings == []  # no stream touched
    else:
        assert changed == [["dnf", "-y", "-q", "module", "reset", "nvidia-driver"]]
        assert warnings == ["dnf module nvidia-driver was reset (it had nvidia-driver:580-open enabled): the repository has no "
                            "stream 590-open, and an enabled stream hides the packages outside it."]
    assert "module stream nvidia-driver:590-open where the repository has it, else install nvidia-driver-pinning-590" in \
        nd.dnf_branch_action(layout, ROCKY9, True)


def test_a_branch_the_repository_lacks_is_refused_naming_what_it_offers_and_the_options():
    layout = dnf_layout(ROCKY9, "open", "610")
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    runner = FakeRunner({
        MODULE_LIST: (0, fixture_text("dnf/nvidia-rhel9-module-list.txt"), ""),
        ENABLED: NONE_ENABLED,
        CANDIDATES + ("nvidia-driver-pinning-610",): (0, "", ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(text, EL9_OPEN), ""),
        ALL_VERSIONS + tuple(EL9_OPEN): (0, text, ""),
        ("dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n", "nvidia-driver-pinning-*"):
            (0, "", ""),
        ("dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n", "cuda-drivers-*"): (0, "", ""),
        ("dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n", "nvidia-open-*"): (0, "", ""),
    })
    with pytest.raises(ModuleError) as info:
        nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="610"), ROCKY9, list(EL9_OPEN), list(EL9_OPEN), False, [])
    msg = str(info.value)
    assert "offers nvidia-driver 590.48.01, 595.45.04, 595.71.05" in msg and "not anything of branch 610" in msg
    assert "'dnf module disable nvidia-driver' shows them" in msg
    assert "Set branch to one it offers (590, 595)" in msg and "or version to one listed" in msg and "Nothing was installed" in msg
    assert not any(c[:3] == ["dnf", "--assumeno", "--setopt=install_weak_deps=False"] for c in runner.calls)


def test_a_version_the_repository_lacks_is_refused():
    layout = dnf_layout(ROCKY9, "open", "595")
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    runner = FakeRunner({
        MODULE_LIST: (1, "", fixture_text("dnf/nvidia-module-list-none.err")),
        CANDIDATES + ("nvidia-driver-pinning-595",): (0, "", ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(text, EL9_OPEN), ""),
        ALL_VERSIONS + tuple(EL9_OPEN): (0, text, ""),
        CANDIDATES + ("nvidia-driver-pinning-*",): (0, "", ""), CANDIDATES + ("cuda-drivers-*",): (0, "", ""),
        CANDIDATES + ("nvidia-open-*",): (0, "", ""),
    })
    with pytest.raises(ModuleError, match="not version 595.58.03 \\(held by its exact version, versionlocked after the install\\)"):
        nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="595", version="595.58.03"), ROCKY9, list(EL9_OPEN),
                           list(EL9_OPEN), False, [])


@pytest.mark.parametrize("distro, listing, meta, pinned, components", [
    (ALMA10, "dnf/nvidia-nonmodular-repoquery.txt", "dnf/nvidia-nonmodular-assumeno-590-meta.txt",
     "dnf/nvidia-nonmodular-assumeno-590-pinned.txt", "dnf/nvidia-rhel9-repoquery-after-streams.txt"),
    (FEDORA41, "dnf/nvidia-fedora41-repoquery.txt", "dnf/nvidia-fedora41-assumeno-590-meta.txt",
     "dnf/nvidia-fedora41-assumeno-590-pinned.txt", "dnf/nvidia-fedora41-repoquery-components.txt"),
])
def test_rhel10_and_fedora_never_touch_streams_and_name_the_components_the_meta_would_pull_newer(
        distro, listing, meta, pinned, components):
    """nvidia-open-590.48.01 alone pulls 595 components (captured with real dnf 4; dnf 5's shape hand-written): the
    components are then named at 590.48.01 too, and the second simulation is all 590."""
    layout = dnf_layout(distro, "open", "590")
    text = fixture_text(listing)
    release = "1.fc41" if distro is FEDORA41 else "1.el9"
    meta_spec = f"nvidia-open-590.48.01-{release}"
    wrong = sorted(n for n in _packages.parse_dnf_transaction(fixture_text(meta)) if n != "nvidia-open")
    extra = [f"{n}-590.48.01-{release}" for n in wrong]
    runner = FakeRunner({
        CANDIDATES + ("nvidia-driver-pinning-590",): (0, "", ""),
        CANDIDATES + ("nvidia-open",): (0, latest(text, ["nvidia-open"]), ""),
        ALL_VERSIONS + ("nvidia-open",): (0, text, ""),
        ASSUMENO + (meta_spec,): (1, fixture_text(meta), ""),
        ALL_VERSIONS + tuple(wrong): (0, fixture_text(components), ""),
        ASSUMENO + (meta_spec, *extra): (1, fixture_text(pinned), ""),
    })
    skip, got = nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590"), distro, ["nvidia-open"], ["nvidia-open"],
                                   False, [])
    assert got == {"nvidia-open": meta_spec, **dict(zip(wrong, extra))}
    assert not any("module" in c for c in runner.calls)
    assert "no module streams on" in nd.dnf_branch_action(layout, distro, True)


def test_components_the_repository_lacks_at_the_branch_are_refused():
    layout = dnf_layout(ALMA10, "open", "590")
    text = fixture_text("dnf/nvidia-nonmodular-repoquery.txt")
    meta = fixture_text("dnf/nvidia-nonmodular-assumeno-590-meta.txt")
    runner = FakeRunner({
        CANDIDATES + ("nvidia-driver-pinning-590",): (0, "", ""),
        CANDIDATES + ("nvidia-open",): (0, latest(text, ["nvidia-open"]), ""),
        ALL_VERSIONS + ("nvidia-open",): (0, text, ""),
        ASSUMENO + ("nvidia-open-590.48.01-1.el9",): (1, meta, ""),
        ALL_VERSIONS + ("kmod-nvidia-open-dkms", "nvidia-driver", "nvidia-driver-cuda"): (0, "nvidia-driver\t3:595.71.05-1.el9\n", ""),
    })
    with pytest.raises(ModuleError, match="outside branch 590 \\(kmod-nvidia-open-dkms 595.71.05, nvidia-driver 595.71.05, "
                                          "nvidia-driver-cuda 595.71.05\\).*has no 590.48.01 of them"):
        nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590"), ALMA10, ["nvidia-open"], ["nvidia-open"], False, [])


def test_a_pinning_package_the_repository_offers_is_installed_first():
    """nvidia-driver-pinning-<b> on RPM distributions was not found in NVIDIA's docs: used only where offered."""
    layout = dnf_layout(ALMA10, "proprietary", "590")
    text = fixture_text("dnf/nvidia-nonmodular-repoquery.txt")
    spec = "cuda-drivers-590.48.01-1.el9"
    runner = FakeRunner({
        CANDIDATES + ("nvidia-driver-pinning-590",): (0, "nvidia-driver-pinning-590\t590.48.01-1.el9\n", ""),
        ("dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install", "nvidia-driver-pinning-590"): (0, "", ""),
        CANDIDATES + ("cuda-drivers",): (0, latest(text, ["cuda-drivers"]), ""),
        ALL_VERSIONS + ("cuda-drivers",): (0, text, ""),
        ASSUMENO + (spec,): (1, "Installing:\n cuda-drivers  x86_64  3:590.48.01-1.el9  cuda  1 k\n", ""),
    })
    assert nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590", flavor="proprietary"), ALMA10, ["cuda-drivers"],
                              ["cuda-drivers"], False, [])[1] == {"cuda-drivers": spec}
    assert runner.calls[1][-1] == "nvidia-driver-pinning-590"


@pytest.mark.parametrize("answer", [(0, "", ""), (0, "garbage\n<html>502</html>\n", ""),
                                    (0, fixture_text("dnf/nvidia-hostile-repoquery.txt"), "")])
def test_an_empty_or_garbled_repository_answer_is_refused_as_lacking_the_driver(answer):
    layout = dnf_layout(ALMA10, "open", "590")
    runner = FakeRunner({
        CANDIDATES + ("nvidia-driver-pinning-590",): answer,
        CANDIDATES + ("nvidia-open",): answer,
        CANDIDATES + ("nvidia-driver-pinning-*",): answer, CANDIDATES + ("cuda-drivers-*",): answer,
        CANDIDATES + ("nvidia-open-*",): answer,
        ALL_VERSIONS + ("nvidia-open",): answer,
    })
    with pytest.raises(ModuleError, match="NVIDIA's repository \\(or the mirror\\) has no nvidia-open|offers nvidia-open"):
        nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590"), ALMA10, ["nvidia-open"], ["nvidia-open"], False, [])


def test_rhel9_without_a_branch_and_a_module_list_without_streams_takes_the_newest_with_a_warning():
    layout = dnf_layout(ROCKY9, "open", None)
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    runner = FakeRunner({
        MODULE_LIST: (0, fixture_text("dnf/nvidia-module-list-no-streams.txt"), ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(text, EL9_OPEN), ""),
    })
    warnings = []
    assert nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(), ROCKY9, list(EL9_OPEN), list(EL9_OPEN), False,
                              warnings) == ([], {})
    assert warnings == ["NVIDIA's repository (or the mirror) has no dnf module stream nvidia-driver:open-dkms: the newest "
                        "driver is installed without one."]


def test_hold_false_without_a_stream_warns_that_nothing_keeps_the_branch():
    layout = dnf_layout(FEDORA41, "open", "590")
    text = fixture_text("dnf/nvidia-fedora41-repoquery.txt")
    runner = FakeRunner({
        CANDIDATES + ("nvidia-driver-pinning-590",): (0, "", ""),
        CANDIDATES + ("nvidia-open",): (0, latest(text, ["nvidia-open"]), ""),
        ALL_VERSIONS + ("nvidia-open",): (0, text, ""),
        ASSUMENO + ("nvidia-open-590.48.01-1.fc41",): (1, fixture_text("dnf/nvidia-fedora41-assumeno-590-pinned.txt"), ""),
    })
    warnings = []
    nd.hold_dnf_branch(_packages.Dnf(runner), layout, params(branch="590", hold=False), FEDORA41, ["nvidia-open"], ["nvidia-open"],
                       False, warnings)
    assert any("nothing keeps dnf on branch 590" in w for w in warnings)
    assert "not versionlocked: hold is false" in nd.dnf_branch_action(layout, FEDORA41, False)


def test_a_dnf_branch_change_the_repository_cannot_serve_puts_the_versionlock_back(tree, monkeypatch):
    """Rocky 9 on 580 (from the 580-open stream, versionlocked) asked for 610: the change unholds, the branch step finds
    nothing of 610 and refuses; the lock on the installed 580 packages is added again before the error."""
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/rocky9"), "proc/modules": "", "usr/bin/dnf": "",
                             "proc/sys/kernel/arch": "x86_64\n",
                             "srv/keys/nvidia.asc": fixture_text("openpgp/test-rsa3072-sha512.asc")})))
    monkeypatch.setattr(platform, "release", lambda: "5.14.0-427.el9.x86_64")
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")
    query = ("rpm", "-q", "-a", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", *nd.RPM_DRIVER_GLOBS,
             "python3-dnf-plugin-versionlock")
    installed = "".join(f"{n}\t3:580.105.08-1.el9\n" for n in EL9_OPEN) + "python3-dnf-plugin-versionlock\t0:4.3.0-16.el9\n"
    locks = "".join(f"{n}-3:580.105.08-1.el9.*\n" for n in EL9_OPEN)
    held = sorted(EL9_OPEN)
    text = fixture_text("dnf/nvidia-rhel9-repoquery-after-streams.txt")
    runner = FakeRunner({
        query: (0, installed, ""),
        ("dnf", "-q", "versionlock", "list"): (0, locks, ""),
        ("dnf", "-q", "makecache", "--setopt=metadata_expire=86400"): (0, "", ""),
        ("dnf", "-q", "versionlock", "delete", *held): (0, "", ""),
        MODULE_LIST: (0, fixture_text("dnf/nvidia-rhel9-module-list.txt"), ""),
        ENABLED: (0, fixture_text("dnf/nvidia-rhel9-module-list-enabled-580-open.txt"), ""),
        ("dnf", "-y", "-q", "module", "reset", "nvidia-driver"): (0, "", ""),
        CANDIDATES + ("nvidia-driver-pinning-610",): (0, "", ""),
        CANDIDATES + tuple(EL9_OPEN): (0, latest(text, EL9_OPEN), ""),
        ALL_VERSIONS + tuple(EL9_OPEN): (0, text, ""),
        ("dnf", "-q", "versionlock", "add", *held): (0, "", ""),
    })
    p = params(branch="610", flavor="open", source="nvidia_repo", repo_key="/srv/keys/nvidia.asc", persistence=False,
               blacklist_nouveau=False, kernel_headers=False)
    with pytest.raises(ModuleError) as info:
        run_worker(nd.Driver, make_host(p, runner, sysroot=root))
    assert "not anything of branch 610" in info.value.msg
    assert info.value.msg.endswith(f"The installed driver's versionlock ({' '.join(held)}) was put back.")
    assert runner.calls[-1] == ["dnf", "-q", "versionlock", "add", *held]
    assert not any(c[:5] == ["dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install"] for c in runner.calls)
