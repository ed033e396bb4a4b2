# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot, parse_kv_file

from mlhost_testlib import FakeRun, fixture_text


@pytest.mark.parametrize(
    "name, expected, pkg_mgr",
    [
        ("debian12", {"id": "debian", "version": "12", "major": "12", "codename": "bookworm", "family": "debian"}, "apt"),
        ("debian13", {"id": "debian", "version": "13", "major": "13", "codename": "trixie", "family": "debian"}, "apt"),
        ("ubuntu2404", {"id": "ubuntu", "version": "24.04", "major": "24", "codename": "noble", "family": "debian"}, "apt"),
        ("rocky9", {"id": "rocky", "version": "9.4", "major": "9", "codename": None, "family": "redhat"}, "dnf"),
        ("rhel9", {"id": "rhel", "version": "9.4", "major": "9", "codename": None, "family": "redhat"}, "dnf"),
        ("almalinux8", {"id": "almalinux", "version": "8.10", "major": "8", "codename": None, "family": "redhat"}, "dnf"),
        ("fedora41", {"id": "fedora", "version": "41", "major": "41", "codename": None, "family": "redhat"}, "dnf"),
        ("centos7", {"id": "centos", "version": "7", "major": "7", "codename": None, "family": "redhat"}, "yum"),
    ],
)
def test_distro_and_pkg_mgr(tree, name, expected, pkg_mgr):
    root = Sysroot(str(tree({"etc/os-release": fixture_text(f"os-release/{name}")})))
    facts = _distro.distro_facts(root)
    assert {k: facts[k] for k in expected} == expected
    assert _distro.pkg_mgr_for(facts, root) == pkg_mgr


def test_os_release_falls_back_to_usr_lib(tree):
    root = Sysroot(str(tree({"usr/lib/os-release": fixture_text("os-release/debian12")})))
    assert _distro.distro_facts(root)["id"] == "debian"


def test_no_os_release_is_null_not_an_error(tree):
    root = Sysroot(str(tree({"etc": None})))
    facts = _distro.distro_facts(root)
    assert facts["id"] is None and facts["family"] is None
    assert _distro.pkg_mgr_for(facts, root) is None


def test_unknown_distro_uses_the_programs_present(tree):
    root = Sysroot(str(tree({"etc/os-release": 'ID=oddlinux\n', "usr/bin/dnf": "#!/bin/sh\n"})))
    facts = _distro.distro_facts(root)
    assert facts["family"] == "unknown"
    assert _distro.pkg_mgr_for(facts, root) == "dnf"


def test_kv_parser_handles_quotes_and_comments():
    parsed = parse_kv_file('# comment\nA="x y"\nB=\'z\'\nC=plain\nbroken line\nD="say \\"hi\\""\n')
    assert parsed == {"A": "x y", "B": "z", "C": "plain", "D": 'say "hi"'}


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"run/systemd/container": "docker\n"}, "docker"),
        ({".dockerenv": ""}, "docker"),
        ({"run/.containerenv": "engine=podman\n"}, "podman"),
        ({"proc/1/environ": b"PATH=/bin\0container=lxc\0"}, "lxc"),
        ({"proc/1/cgroup": "0::/kubepods/burstable/pod1234/abcd\n"}, "kubernetes"),
        ({"proc/1/cgroup": "12:pids:/docker/0123abcd\n"}, "docker"),
        ({"proc/sys/kernel/osrelease": "5.15.153.1-microsoft-standard-WSL2\n"}, "wsl"),
        ({"proc/1/cgroup": "0::/init.scope\n", "proc/sys/kernel/osrelease": "6.1.0-27-amd64\n"}, None),
    ],
)
def test_container(tree, files, expected):
    assert _distro.container_fact(Sysroot(str(tree(files)))) == expected


@pytest.mark.parametrize(
    "vendor, product, expected",
    [
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)", "kvm"),
        ("Amazon EC2", "p5.48xlarge", "aws"),
        ("Google", "Google Compute Engine", "gce"),
        ("VMware, Inc.", "VMware Virtual Platform", "vmware"),
        ("Supermicro", "SYS-821GE-TNHR", None),
    ],
)
def test_virtualization(tree, vendor, product, expected):
    root = Sysroot(str(tree({"sys/class/dmi/id/sys_vendor": vendor, "sys/class/dmi/id/product_name": product})))
    assert _distro.virtualization_fact(root) == expected


EFIVAR = f"sys/firmware/efi/efivars/{_distro.SECURE_BOOT_VAR}"


@pytest.mark.parametrize(
    "files, container, expected",
    [
        ({EFIVAR: b"\x06\x00\x00\x00\x01"}, None, "enabled"),
        ({EFIVAR: b"\x06\x00\x00\x00\x00"}, None, "disabled"),
        ({"sys/firmware/efi/efivars/Boot0000-8be4df61-93ca-11d2-aa0d-00e098032b8c": b"\x07\x00\x00\x00"}, None, "disabled"),
        ({"sys/firmware/acpi": None, "sys/bus": None}, None, "disabled"),  # legacy BIOS boot
        ({"sys/firmware": None, "sys/bus": None}, "docker", "unknown"),  # masked in a container
        ({}, None, "unknown"),
    ],
)
def test_secure_boot(tree, files, container, expected):
    root = Sysroot(str(tree(dict(files, etc=None))))
    assert _distro.secure_boot_fact(root, container, FakeRun()) == expected


def test_secure_boot_asks_mokutil_when_efivars_unreadable(monkeypatch, tree):
    root = Sysroot(str(tree({"sys/firmware/efi": None})))
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    run = FakeRun({("mokutil", "--sb-state"): (0, "SecureBoot enabled\n", "")})
    assert _distro.secure_boot_fact(root, None, run) == "enabled"
    assert run.calls == [["mokutil", "--sb-state"]]


def test_arch_from_elf_header_of_an_image(tree):
    header = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + (0xB7).to_bytes(2, "little")
    root = Sysroot(str(tree({"usr/bin/sh": header})))
    assert _distro.arch_fact(root) == "aarch64"
    assert _distro.kernel_fact(root) is None


def test_arch_and_kernel_from_proc(tree):
    root = Sysroot(str(tree({"proc/sys/kernel/arch": "x86_64\n", "proc/sys/kernel/osrelease": "6.8.0-48-generic\n"})))
    assert _distro.arch_fact(root) == "x86_64"
    assert _distro.kernel_fact(root) == "6.8.0-48-generic"
