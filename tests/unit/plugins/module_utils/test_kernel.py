# SPDX-License-Identifier: GPL-3.0-or-later
"""A driver that survives the kernel: kernel holds recorded as ours, DKMS signing with a given MOK pair, mokutil's words.

The dpkg-query, openssl and mokutil answers here are hand-written in those tools' formats (dpkg-query's
``${Package}\\t${db:Status-Abbrev}\\t${Version}`` lines as in fixtures/dpkg/query-held-debian13.txt; openssl's PEM
public key blocks; mokutil 0.6's ``--sb-state`` and ``--test-key`` sentences, from its source), not captured on a
Secure Boot host: none was at hand.
"""

from __future__ import annotations

import json
import platform

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro, _kernel, _nvidia_driver as nd, _nvidia_repo, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker

KERNEL = "6.1.0-40-amd64"
FMT = ["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"]
DRIVER_QUERY = FMT + nd.APT_DRIVER_GLOBS + [f"linux-headers-{KERNEL}"]
KERNEL_QUERY = FMT + [f"linux-*-{KERNEL}", "linux-*-amd64", "linux-*-amd64-hwe-*", "linux-*-amd64-*-edge"]
DRIVER = "".join(f"{n}\thi \t535.309.01-0+deb12u1\n" for n in ("nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "libcuda1")) + (
    "nvidia-persistenced\thi \t535.171.04-1~deb12u1\n")
# A Debian 12 host: its running kernel 6.1.0-40, an older 6.1.0-38 still installed, the metas, headers and kbuild.
KERNELS = (f"linux-image-{KERNEL}\tii \t6.1.153-1\nlinux-headers-{KERNEL}\tii \t6.1.153-1\nlinux-image-6.1.0-38-amd64\tii \t6.1.147-1\n"
           "linux-image-amd64\tii \t6.1.153-1\nlinux-headers-amd64\tii \t6.1.153-1\nlinux-headers-6.1.0-40-common\tii \t6.1.153-1\n")
SYSTEMCTL = ("/usr/bin/systemctl", "is-enabled", "nvidia-persistenced.service")
SOURCES = "deb http://deb.debian.org/debian bookworm main\n"


def params(**overrides):
    base = {"branch": "535", "version": "", "flavor": "auto", "source": "auto", "repo_url": "", "repo_key": "", "repo_key_sha256": "",
            "hold": True, "blacklist_nouveau": True, "persistence": True, "exclude_from_automatic_upgrades": True,
            "mok_certificate": "", "mok_key": "", "hold_kernel": True, "kernel_modules": "auto", "kernel_headers": True, "server_packages": True,
            "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300}
    base.update(overrides)
    return base


@pytest.fixture
def provisioned(tree, monkeypatch, tmp_path):
    """A Debian 12 host with the driver installed, held and configured: only the kernel (and signing) part is left."""
    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    monkeypatch.setattr(platform, "release", lambda: KERNEL)
    monkeypatch.setattr(nd.Driver, "today", "2026-11-22")

    def make(extra=None):
        base = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12"), "etc/apt/sources.list": SOURCES})))
        files = nd.make_layout(params(), base, _distro.distro_facts(base), _packages.Apt(FakeRunner({})), lambda url: b"", KERNEL).files
        content = {"etc/os-release": fixture_text("os-release/debian12"), "etc/apt/sources.list": SOURCES, "proc/modules": "",
                   nd.BLACKLIST_FILE.lstrip("/"): nd.BLACKLIST.decode(), nd.UNATTENDED_FILE.lstrip("/"): nd.UNATTENDED.decode()}
        content.update({path.lstrip("/"): data.decode() for path, data in files.items() if data is not None})
        content.update(extra or {})
        return Sysroot(str(tree(content)))

    return make


def runner_for(kernels, more=None):
    responses = {tuple(DRIVER_QUERY): (0, DRIVER + f"linux-headers-{KERNEL}\tii \t6.1.153-1\n", ""),
                 tuple(KERNEL_QUERY): (0, kernels, ""), SYSTEMCTL: (0, "enabled\n", "")}
    responses.update(more or {})
    return FakeRunner(responses, programs={"systemctl": "/usr/bin/systemctl"})


def record_of(root):
    data = root.read_bytes(_kernel.HOLDS_FILE.lstrip("/"))
    return json.loads(data) if data else None


# The running kernel's packages and its metas -------------------------------------------------


@pytest.mark.parametrize("release, flavour", [
    ("6.1.0-40-amd64", "amd64"), ("6.1.0-40-cloud-amd64", "cloud-amd64"), ("6.12.48+deb13-amd64", "amd64"),
    ("6.12.48+deb13-rt-arm64", "rt-arm64"), ("6.8.0-49-generic", "generic"), ("6.8.0-1015-aws", "aws"),
    ("5.14.0-427.13.1.el9_4.x86_64", None), ("6.18.44-fc-v1098", None), ("6.6.0", None),
])
def test_the_flavour_of_a_kernel_release(release, flavour):
    assert _kernel.deb_flavour(release) == flavour


def test_debian_holds_the_running_kernel_and_its_metas_not_an_older_kernel():
    installed = _packages.parse_dpkg_query_held(KERNELS + "linux-libc-dev\tii \t6.1.153-1\nlinux-base\tii \t4.9\n")
    own, metas = _kernel.kernel_packages("apt", KERNEL, installed)
    assert own == [f"linux-headers-{KERNEL}", f"linux-image-{KERNEL}"]
    assert metas == ["linux-headers-amd64", "linux-image-amd64"]


def test_ubuntu_holds_the_generic_metas_hwe_and_the_precompiled_nvidia_meta():
    release = "6.8.0-49-generic"
    names = [f"linux-image-{release}", f"linux-modules-{release}", f"linux-modules-extra-{release}", f"linux-headers-{release}",
             f"linux-modules-nvidia-550-server-{release}", "linux-generic-hwe-22.04", "linux-image-generic-hwe-22.04",
             "linux-headers-generic-hwe-22.04", "linux-modules-nvidia-550-server-generic-hwe-22.04", "linux-headers-6.8.0-49",
             "linux-image-6.5.0-41-generic", "linux-firmware"]
    own, metas = _kernel.kernel_packages("apt", release, {n: ("1", False) for n in names})
    assert own == sorted(names[:5])
    assert metas == ["linux-generic-hwe-22.04", "linux-headers-generic-hwe-22.04", "linux-image-generic-hwe-22.04",
                     "linux-modules-nvidia-550-server-generic-hwe-22.04"]


def test_dnf_locks_the_kernel_packages_of_the_running_version_only():
    release = "5.14.0-427.13.1.el9_4.x86_64"
    installed = {"kernel": ("0:5.14.0-427.13.1.el9_4", False), "kernel-core": ("0:5.14.0-427.13.1.el9_4", False),
                 "kernel-devel": ("0:5.14.0-503.el9", False), "kernel-headers": ("0:5.14.0-427.13.1.el9_4", False)}
    own, metas = _kernel.kernel_packages("dnf", release, installed)
    assert own == ["kernel-5.14.0-427.13.1.el9_4", "kernel-core-5.14.0-427.13.1.el9_4"] and metas == []
    assert [_kernel.spec_name("dnf", s) for s in own] == ["kernel", "kernel-core"]
    assert _kernel.query_patterns("dnf", release) == list(_kernel.KERNEL_RPMS)


@pytest.mark.parametrize("release", ["6.1.0-40-amd64;rm", "../x", "6.1 0", "*", ""])
def test_a_release_no_package_could_be_named_after_is_refused(release):
    with pytest.raises(ModuleError, match="hold_kernel cannot tell its packages"):
        _kernel.check_release(release)


def test_plan_holds_never_releases_an_admins_hold():
    installed = {"a": ("1", True), "b": ("1", False), "c": ("1", True), "old": ("1", True), "gone": ("1", False)}
    plan = _kernel.plan_holds("apt", True, ["a", "b", "c"], installed, ["c", "old", "gone"])
    assert plan.hold == ["b"] and plan.kept == ["a"] and plan.release == ["old"] and plan.record == ["b", "c"]
    off = _kernel.plan_holds("apt", False, ["a", "b", "c"], installed, ["c", "old", "gone"])
    assert off.hold == [] and off.release == ["c", "old"] and off.record == [] and off.kept == []


@pytest.mark.parametrize("data, names", [
    (None, []), (b"", []), (b"not json", []), (b'{"held": ["x"]}', []),  # not ours: no managed_by
    (_kernel.record_bytes("apt", ["b", "a"]), ["a", "b"]), (b'{"managed_by": "mlinfra.mlhost", "held": "x"}', []),
])
def test_the_record_is_read_only_when_it_is_ours(data, names):
    assert _kernel.read_record(data) == names


# The driver with hold_kernel -----------------------------------------------------------------


def test_hold_kernel_holds_the_running_kernel_records_it_and_a_rerun_changes_nothing(provisioned):
    root = provisioned()
    hold = ("apt-mark", "hold", f"linux-headers-{KERNEL}", f"linux-image-{KERNEL}", "linux-headers-amd64", "linux-image-amd64")
    runner = runner_for(KERNELS, {hold: (0, "", "")})
    check = run_worker(nd.Driver, make_host(params(), runner_for(KERNELS), check_mode=True, sysroot=root))
    assert check["changed"] is True and check["kernel_holds"]["hold"] == list(hold[2:])
    assert check["actions"] == [f"hold the kernel packages {' '.join(hold[2:])}, record them in {_kernel.HOLDS_FILE}"]
    assert record_of(root) is None  # check mode wrote nothing
    holds_diff = [d for d in check["diff"] if d["before_header"] == "kernel package holds"][0]
    assert holds_diff["before"] == "" and holds_diff["after"] == "".join(f"{n}\n" for n in sorted(hold[2:]))
    result = run_worker(nd.Driver, make_host(params(), runner, sysroot=root))
    assert list(hold) in runner.calls
    assert record_of(root)["held"] == sorted(hold[2:]) and record_of(root)["managed_by"] == "mlinfra.mlhost"
    assert result["kernel_holds"]["held"] == sorted(hold[2:])
    held = KERNELS.replace("\tii \t", "\thi \t").replace("linux-image-6.1.0-38-amd64\thi", "linux-image-6.1.0-38-amd64\tii")
    again = run_worker(nd.Driver, make_host(params(), runner_for(held), sysroot=root))
    assert again["changed"] is False and again["actions"] == []
    assert again["commands"] == [" ".join(DRIVER_QUERY), " ".join(KERNEL_QUERY), " ".join(SYSTEMCTL)]


def test_an_admins_hold_is_left_alone_and_not_recorded_and_false_releases_only_ours(provisioned):
    admin = KERNELS.replace("linux-image-amd64\tii", "linux-image-amd64\thi")
    root = provisioned()
    hold = ("apt-mark", "hold", f"linux-headers-{KERNEL}", f"linux-image-{KERNEL}", "linux-headers-amd64")
    result = run_worker(nd.Driver, make_host(params(), runner_for(admin, {hold: (0, "", "")}), sysroot=root))
    assert result["kernel_holds"]["admin_held"] == ["linux-image-amd64"]
    assert "leave linux-image-amd64 held by the administrator" in result["actions"][0]
    assert record_of(root)["held"] == sorted(hold[2:])
    # hold_kernel: false releases what we held, not the administrator's linux-image-amd64.
    now = admin.replace("\tii \t", "\thi \t")
    unhold = ("apt-mark", "unhold", f"linux-headers-{KERNEL}", "linux-headers-amd64", f"linux-image-{KERNEL}")
    runner = runner_for(now, {unhold: (0, "", "")})
    query = FMT + KERNEL_QUERY[4:]  # the recorded names are matched by the running kernel's globs already
    off = run_worker(nd.Driver, make_host(params(hold_kernel=False), runner, sysroot=root))
    assert list(unhold) in runner.calls and not any(c[:2] == ["apt-mark", "hold"] for c in runner.calls)
    assert runner.calls[1] == query
    assert off["kernel_holds"]["release"] == list(unhold[2:]) and off["kernel_holds"]["held"] == []
    assert record_of(root) is None
    assert off["actions"][0] == (f"release the kernel holds the collection made ({' '.join(unhold[2:])}), remove {_kernel.HOLDS_FILE}")


def test_without_hold_kernel_and_no_record_nothing_is_asked(provisioned):
    root = provisioned()
    runner = FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER + f"linux-headers-{KERNEL}\tii \t6.1.153-1\n", ""), SYSTEMCTL: (0, "enabled\n", "")},
                        programs={"systemctl": "/usr/bin/systemctl"})
    result = run_worker(nd.Driver, make_host(params(hold_kernel=False), runner, sysroot=root))
    assert result["changed"] is False and len(runner.calls) == 2


def test_an_admins_file_at_the_record_path_releases_nothing(provisioned):
    """A file there that is not the collection's (no managed_by) names no hold of ours."""
    root = provisioned({_kernel.HOLDS_FILE.lstrip("/"): '{"held": ["linux-image-amd64"]}'})
    runner = FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER + f"linux-headers-{KERNEL}\tii \t6.1.153-1\n", ""), SYSTEMCTL: (0, "enabled\n", "")},
                        programs={"systemctl": "/usr/bin/systemctl"})
    assert run_worker(nd.Driver, make_host(params(hold_kernel=False), runner, sysroot=root))["changed"] is False


def test_a_host_whose_running_kernel_has_no_package_is_refused_a_container_holds_its_metas(provisioned):
    metas_only = "linux-image-amd64\tii \t6.1.153-1\nlinux-image-6.1.0-38-amd64\tii \t6.1.147-1\n"
    with pytest.raises(ModuleError, match=f"the running kernel {KERNEL} has no installed package .*set hold_kernel: false"):
        run_worker(nd.Driver, make_host(params(), runner_for(metas_only), check_mode=True, sysroot=provisioned()))
    container = provisioned({".dockerenv": ""})
    plan = run_worker(nd.Driver, make_host(params(), runner_for(metas_only), check_mode=True, sysroot=container))
    assert plan["kernel_holds"]["hold"] == ["linux-image-amd64"]
    assert any("has no package in this container" in w for w in plan["warnings"])


def test_headers_the_install_brings_are_held_after_it(tree, monkeypatch, tmp_path):
    """The running kernel's headers in the same run's install are in the kernel holds (held after the install)."""
    monkeypatch.setattr(platform, "release", lambda: KERNEL)
    driver = nd.Driver(make_host(params(), FakeRunner({tuple(KERNEL_QUERY): (0, f"linux-image-{KERNEL}\tii \t6.1.153-1\n", "")}),
                                 sysroot=Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12")})))))
    steps: list = []
    driver._plan_kernel_holds(_packages.Apt(driver.runner), True, [f"linux-headers-{KERNEL}"], steps)
    assert steps[0]["hold"] == [f"linux-headers-{KERNEL}", f"linux-image-{KERNEL}"]


# DKMS signing with a given key pair --------------------------------------------------------

PUB = ("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
       "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END PUBLIC KEY-----\n")
OTHER = PUB.replace("u1SU1", "x9QQ2")
KEY, CERT = "/root/mok/mok.key", "/root/mok/mok.der"


def openssl_answers(cert_pub=PUB, key_pub=PUB, der=True):
    x509 = ["/usr/bin/openssl", "x509", "-noout", "-pubkey", "-inform"]
    return {tuple(x509 + ["DER", "-in", CERT]): (0, cert_pub, "") if der else (1, "", "Could not read certificate from /root/mok/mok.der\n"),
            tuple(x509 + ["PEM", "-in", CERT]): (0, cert_pub, ""),
            ("/usr/bin/openssl", "pkey", "-pubout", "-in", KEY): (0, key_pub, "")}


def test_a_matching_pair_writes_our_dkms_drop_in_and_never_the_admins_framework_conf(provisioned):
    root = provisioned({KEY.lstrip("/"): "key", CERT.lstrip("/"): "cert", "etc/dkms/framework.conf": "# the admin's\n"})
    runner = FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER + f"linux-headers-{KERNEL}\tii \t6.1.153-1\n", ""), SYSTEMCTL: (0, "enabled\n", ""),
                         **openssl_answers(der=False)}, programs={"systemctl": "/usr/bin/systemctl", "openssl": "/usr/bin/openssl"})
    p = params(hold_kernel=False, mok_key=KEY, mok_certificate=CERT)
    result = run_worker(nd.Driver, make_host(p, runner, sysroot=root))
    assert result["actions"] == [f"write {_kernel.DKMS_SIGNING_FILE}"]
    text = root.read_bytes(_kernel.DKMS_SIGNING_FILE.lstrip("/")).decode()
    assert text.startswith("# Managed by mlinfra.mlhost") and f'mok_signing_key="{KEY}"\nmok_certificate="{CERT}"\n' in text
    assert _kernel.DKMS_SIGNING_FILE.startswith("/etc/dkms/framework.conf.d/") and _kernel.DKMS_SIGNING_FILE.endswith(".conf")
    assert root.read_bytes("etc/dkms/framework.conf") == b"# the admin's\n"
    assert "key" not in json.dumps(result["diff"]).replace("mok_signing_key", "").replace("mok.key", "").replace("Key", "")
    again = run_worker(nd.Driver, make_host(p, FakeRunner(runner.responses, runner.programs), sysroot=root))
    assert again["changed"] is False
    off = run_worker(nd.Driver, make_host(params(hold_kernel=False), FakeRunner(runner.responses, runner.programs), sysroot=root))
    assert off["actions"] == [f"remove {_kernel.DKMS_SIGNING_FILE}"]


@pytest.mark.parametrize("answers, words", [
    (openssl_answers(key_pub=OTHER), "are not one key pair"),
    (openssl_answers(cert_pub="", der=False), "is not an X.509 certificate"),
    (openssl_answers(key_pub=""), "not a private key openssl can read without a passphrase"),
])
def test_a_pair_that_does_not_match_is_refused_before_anything_changes(provisioned, answers, words):
    root = provisioned({KEY.lstrip("/"): "key", CERT.lstrip("/"): "cert"})
    runner = FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER, ""), **answers}, programs={"openssl": "/usr/bin/openssl"})
    with pytest.raises(ModuleError, match=words):
        run_worker(nd.Driver, make_host(params(hold_kernel=False, mok_key=KEY, mok_certificate=CERT), runner, sysroot=root))
    assert root.read_bytes(_kernel.DKMS_SIGNING_FILE.lstrip("/")) is None


@pytest.mark.parametrize("overrides, words", [
    ({"mok_key": KEY}, "mok_key was given without mok_certificate"),
    ({"mok_key": "mok.key", "mok_certificate": CERT}, "mok_key must be an absolute path"),
    ({"mok_key": KEY, "mok_certificate": '/x/"$(reboot)"'}, "mok_certificate must be an absolute path"),
])
def test_key_options_are_checked_first(overrides, words):
    with pytest.raises(ModuleError, match=words):
        nd.check_options(params(**overrides))


def test_a_missing_key_file_or_openssl_is_refused(provisioned):
    root = provisioned({CERT.lstrip("/"): "cert"})
    runner = FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER, "")})
    with pytest.raises(ModuleError, match=f"mok_key {KEY} does not exist"):
        run_worker(nd.Driver, make_host(params(hold_kernel=False, mok_key=KEY, mok_certificate=CERT), runner, sysroot=root))
    root = provisioned({CERT.lstrip("/"): "cert", KEY.lstrip("/"): "key"})
    with pytest.raises(ModuleError, match="openssl is not on the host"):
        run_worker(nd.Driver, make_host(params(hold_kernel=False, mok_key=KEY, mok_certificate=CERT),
                                        FakeRunner({tuple(DRIVER_QUERY): (0, DRIVER, "")}), sysroot=root))


# mokutil's words (hand-written from mokutil 0.6's messages) -----------------------------------


@pytest.mark.parametrize("text, state", [
    ("SecureBoot enabled\n", "enabled"), ("SecureBoot disabled\n", "disabled"),
    ("SecureBoot disabled\nPlatform is in Setup Mode\n", "disabled"),
    ("EFI variables are not supported on this system\n", None), ("", None),
])
def test_mokutil_sb_state(text, state):
    assert _distro.secure_boot_from_mokutil(text) == state


@pytest.mark.parametrize("text, enrolled", [
    ("/root/mok/mok.der is already enrolled\n", True), ("/root/mok/mok.der is not enrolled\n", False),
    ("EFI variables are not supported on this system\n", None), ("Failed to read /root/mok/mok.der\n", None),
])
def test_mokutil_test_key(text, enrolled):
    assert nd.mok_enrolled(text) is enrolled


def test_the_signing_drop_in_is_ours_and_the_holds_record_names_us():
    assert _kernel.HOLDS_FILE.startswith("/var/lib/mlhost/")
    assert "mlhost" in _kernel.DKMS_SIGNING_FILE and _nvidia_repo.MANAGED.strip() in _kernel.signing_conf(KEY, CERT).decode()


# kernel_modules: Ubuntu's signed precompiled modules -------------------------------------------

SECURE_BOOT_ON = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
UBUNTU_KERNEL = "6.8.0-49-generic"
ABI = f"linux-modules-nvidia-580-server-open-{UBUNTU_KERNEL}"
METAS = FMT + ["linux-image-generic", "linux-image-generic-hwe-*"]


@pytest.fixture
def ubuntu(tree, monkeypatch):
    monkeypatch.setattr(platform, "release", lambda: UBUNTU_KERNEL)
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)

    def make(secure_boot=True, extra=None):
        files = {"etc/os-release": fixture_text("os-release/ubuntu2404"), "proc/modules": "", "usr/bin/apt-get": "",
                 "sys/firmware/efi/efivars/.keep": ""}
        if secure_boot:
            files[SECURE_BOOT_ON] = "\x06\x00\x00\x00\x01"
        files.update(extra or {})
        return Sysroot(str(tree(files)))

    return make


def pick(root, runner, **overrides):
    p = params(branch="580", hold_kernel=False, **overrides)
    distro = _distro.distro_facts(root)
    driver = nd.Driver(make_host(p, runner, sysroot=root))
    pm = _packages.Apt(runner)
    layout = nd.make_layout(p, root, distro, pm, lambda url: b"", UBUNTU_KERNEL)
    return driver, driver._pick_kernel_modules(pm, layout, distro)


def test_auto_on_an_ubuntu_secure_boot_host_takes_the_signed_precompiled_modules(ubuntu):
    runner = FakeRunner({tuple(METAS): (0, "linux-image-generic\tii \t6.8.0-49.49\n", ""),
                         ("apt-cache", "policy", ABI): (0, fixture_text("apt/policy-precompiled-ubuntu2404.txt"), "")})
    driver, layout = pick(ubuntu(), runner)
    assert driver.kernel_modules == "precompiled" and "Secure Boot is enabled and the archive has them" in driver.kernel_modules_reason
    assert layout.packages == ["linux-modules-nvidia-580-server-open-generic", ABI, "nvidia-headless-no-dkms-580-server-open",
                               "nvidia-utils-580-server"]
    assert layout.headers == [] and layout.versioned == ["nvidia-headless-no-dkms-580-server-open"]
    assert driver.not_held == ["linux-modules-nvidia-580-server-open-generic", ABI]
    driver._check_secure_boot(False)  # no MOK needed, no mokutil run: Canonical signed them
    assert driver.secure_boot == "enabled" and [c[0] for c in runner.calls] == ["dpkg-query", "apt-cache"]


def test_an_hwe_host_takes_the_hwe_modules_meta(ubuntu):
    runner = FakeRunner({tuple(METAS): (0, "linux-image-generic-hwe-24.04\tii \t6.8.0-49.49\n", ""),
                         ("apt-cache", "policy", ABI): (0, fixture_text("apt/policy-precompiled-ubuntu2404.txt"), "")})
    driver, layout = pick(ubuntu(), runner, kernel_modules="precompiled")
    assert layout.packages[0] == "linux-modules-nvidia-580-server-open-generic-hwe-24.04"
    assert "kernel_modules: precompiled was set" in driver.kernel_modules_reason


def test_auto_without_the_running_kernels_modules_in_the_archive_is_dkms_and_precompiled_is_refused(ubuntu):
    responses = {tuple(METAS): (0, "linux-image-generic\tii \t6.8.0-49.49\n", ""),
                 ("apt-cache", "policy", ABI): (0, fixture_text("apt/policy-precompiled-missing-ubuntu2404.txt"), "")}
    driver, layout = pick(ubuntu(), FakeRunner(responses))
    assert driver.kernel_modules == "dkms" and f"the archive offers no {ABI}" in driver.kernel_modules_reason
    assert layout.packages == ["nvidia-driver-580-server-open", "nvidia-utils-580-server"]
    assert layout.headers == [f"linux-headers-{UBUNTU_KERNEL}"]
    with pytest.raises(ModuleError, match=f"has no {ABI}, the signed branch 580 modules for the running kernel {UBUNTU_KERNEL}.*kernel_modules: dkms"):
        pick(ubuntu(), FakeRunner(responses), kernel_modules="precompiled")


def test_auto_without_secure_boot_or_in_a_container_is_dkms_and_asks_nothing(ubuntu):
    driver, layout = pick(ubuntu(secure_boot=False), FakeRunner({}))
    assert driver.kernel_modules == "dkms" and driver.kernel_modules_reason == "DKMS: Secure Boot is disabled"
    driver, layout = pick(ubuntu(extra={".dockerenv": ""}), FakeRunner({}))
    assert driver.kernel_modules == "dkms" and "container" in driver.kernel_modules_reason


@pytest.mark.parametrize("release, overrides, words", [
    ("12", {}, "Debian GNU/Linux 12 \\(bookworm\\) has none for this host. Use kernel_modules: dkms"),
    ("12", {"source": "nvidia_repo", "branch": "580"}, "NVIDIA's repository has none"),
])
def test_precompiled_where_there_are_none_is_refused_naming_dkms(tree, release, overrides, words):
    root = Sysroot(str(tree({"etc/os-release": fixture_text(f"os-release/debian{release}"), "usr/bin/apt-get": "",
                             "etc/apt/sources.list": SOURCES})))
    p = params(kernel_modules="precompiled", hold_kernel=False, **overrides)
    driver = nd.Driver(make_host(p, FakeRunner({}), sysroot=root))
    distro = _distro.distro_facts(root)
    layout = nd.Layout("nvidia_repo" if overrides else "distro", "", "open", p["branch"], [], [], [], None, None, False, {}, [])
    with pytest.raises(ModuleError, match=words):
        driver._pick_kernel_modules(_packages.Apt(FakeRunner({})), layout, distro)


def test_precompiled_on_rhel_is_refused_naming_dkms(tree):
    root = Sysroot(str(tree({"etc/os-release": fixture_text("os-release/rocky9")})))
    driver = nd.Driver(make_host(params(kernel_modules="precompiled"), FakeRunner({}), sysroot=root))
    layout = nd.Layout("nvidia_repo", "", "open", "580", [], [], [], None, None, False, {}, [])
    with pytest.raises(ModuleError, match="NVIDIA's repository has none for this host. Use kernel_modules: dkms"):
        driver._pick_kernel_modules(_packages.Dnf(FakeRunner({})), layout, _distro.distro_facts(root))


def test_the_precompiled_modules_are_not_held_with_the_driver(ubuntu, monkeypatch):
    """A held modules meta would keep the next kernel's modules out: hold_kernel holds them with the kernel instead."""
    rows = [("linux-modules-nvidia-580-server-open-generic", "6.8.0-49.49"), (ABI, "6.8.0-49.49"),
            ("nvidia-headless-no-dkms-580-server-open", "580.95.05-0ubuntu0.24.04.1"), ("nvidia-utils-580-server", "580.95.05-0ubuntu0.24.04.1")]
    installed = "".join(f"{n}\tii \t{v}\n" for n, v in rows)
    root = ubuntu()
    driver, layout = pick(root, FakeRunner({tuple(METAS): (0, "linux-image-generic\tii \t6.8.0-49.49\n", ""),
                                            ("apt-cache", "policy", ABI): (0, fixture_text("apt/policy-precompiled-ubuntu2404.txt"), "")}))
    before = _packages.parse_dpkg_query_held(installed)
    assert driver.holdable(_packages.Apt(FakeRunner({})), sorted(before)) == [
        "nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server"]
    assert _kernel.kernel_packages("apt", UBUNTU_KERNEL, before)[0] == [ABI]  # hold_kernel holds these with the kernel


def test_secure_boot_with_a_given_pair_not_enrolled_names_its_mokutil_import(provisioned):
    root = provisioned({"sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c": "\x06\x00\x00\x00\x01",
                        KEY.lstrip("/"): "key", CERT.lstrip("/"): "cert"})
    runner = FakeRunner({("/usr/bin/mokutil", "--test-key", CERT): (0, f"{CERT} is not enrolled\n", "")}, programs={"mokutil": "/usr/bin/mokutil"})
    driver = nd.Driver(make_host(params(mok_key=KEY, mok_certificate=CERT), runner, sysroot=root))
    with pytest.raises(ModuleError, match=f"MOK certificate {CERT} is not enrolled .*mokutil --import {CERT}' .*Enroll MOK"):
        driver._check_secure_boot(False)
