# SPDX-License-Identifier: GPL-3.0-or-later
"""The DKMS-built NVIDIA module per installed kernel: the ``dkms status`` parser, the file reader of a sysroot,
installed and default boot kernels, and ``nvidia.dkms`` / ``reboot_blockers`` in host_facts.

The ``dkms status`` texts (fixtures/dkms/) are hand-written, not captured: no DKMS host was at hand. They follow
the exact format dkms.in prints (do_status and do_status_weak of dell/dkms v3.0.10 for the 3.x lines, v2.8.1 for
the comma-separated 2.x lines), with the remarks those versions print; fixtures/README.md says the same.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro, _host, _nvidia
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRun, Link, fixture_text

DEBIAN12 = {"family": "debian", "id": "debian", "major": "12"}
ROCKY9 = {"family": "redhat", "id": "rocky", "major": "9"}
KOS = ("nvidia.ko.xz", "nvidia-modeset.ko.xz", "nvidia-uvm.ko.xz")


def entry(module, version, kernel, arch, state, detail=None):
    return {"module": module, "version": version, "kernel": kernel, "arch": arch, "state": state, "detail": detail}


def test_dkms3_status_debian12():
    # hand-written in dkms 3.0.10's format (2>&1: the Deprecated and Error! lines are its stderr)
    assert _nvidia.parse_dkms_status(fixture_text("dkms/status-dkms3-debian12.txt")) == [
        entry("nvidia-current", "535.261.03", "6.1.0-27-amd64", "x86_64", "installed"),
        entry("nvidia-current", "535.261.03", "6.1.0-28-amd64", "x86_64", "installed", "(WARNING! Diff between built and installed module!)"),
        entry("nvidia-current", "535.261.03", "6.1.0-29-amd64", "x86_64", "built"),
        entry("nvidia", "590.48.01", None, None, "added"),
        entry("nvidia-fs", "2.17.5", "6.1.0-28-amd64", "x86_64", "installed"),
        entry("nvidia-open", "580.95.05", None, None, "broken"),
    ]


def test_dkms2_status_ubuntu2004():
    # hand-written in dkms 2.8.1's format (Ubuntu 20.04's dkms): module, version, kernel, arch separated by commas
    assert _nvidia.parse_dkms_status(fixture_text("dkms/status-dkms2-ubuntu2004.txt")) == [
        entry("nvidia", "535.104.05", "5.15.0-83-generic", "x86_64", "installed"),
        entry("nvidia", "535.104.05", "5.15.0-84-generic", "x86_64", "installed", "(original_module exists)"),
        entry("nvidia", "535.104.05", "5.15.0-86-generic", "x86_64", "built"),
        entry("nvidia", "470.223.02", None, None, "added"),
        entry("nvidia-srv", "535.104.05", "5.15.0-84-generic", "x86_64", "installed", "(WARNING! Diff between built and installed module!)"),
    ]


def test_dkms3_installed_weak_lines_keep_the_comma_format():
    # hand-written: dkms 3.x prints installed-weak lines (RHEL's weak-updates) in the 2.x comma format
    found = _nvidia.parse_dkms_status(fixture_text("dkms/status-dkms3-rocky8-weak.txt"))
    assert found[1] == entry("nvidia", "550.54.14", "4.18.0-513.9.1.el8_9.x86_64", "x86_64", "installed-weak",
                             "from 4.18.0-513.5.1.el8_9.x86_64")


@pytest.mark.parametrize(
    "line, expected",
    [
        ("nvidia/535.261.03, 6.1.0-28-amd64, x86_64: installed", ("nvidia", "535.261.03", "6.1.0-28-amd64", "x86_64", "installed")),
        ("nvidia, 535.104.05, 6.1.0-13-amd64, x86_64: installed", ("nvidia", "535.104.05", "6.1.0-13-amd64", "x86_64", "installed")),
        ("nvidia/590.48.01: added", ("nvidia", "590.48.01", None, None, "added")),
        ("nvidia, 590.48.01: added", ("nvidia", "590.48.01", None, None, "added")),
        ("nvidia/550.54.14, 5.14.0-427.13.1.el9_4.x86_64, x86_64: built", ("nvidia", "550.54.14", "5.14.0-427.13.1.el9_4.x86_64", "x86_64", "built")),
        ("nvidia-open/580.95.05, 6.8.0-49-generic, x86_64: installed (original_module exists)",
         ("nvidia-open", "580.95.05", "6.8.0-49-generic", "x86_64", "installed")),
        ("nvidia-srv/535.183.06, 6.6.31+rpt-rpi-v8, aarch64: installed", ("nvidia-srv", "535.183.06", "6.6.31+rpt-rpi-v8", "aarch64", "installed")),
        ("  nvidia/535.261.03, 6.1.0-28-amd64, x86_64: installed\r", ("nvidia", "535.261.03", "6.1.0-28-amd64", "x86_64", "installed")),
    ],
)
def test_dkms_status_lines(line, expected):
    found = _nvidia.parse_dkms_status(line)
    assert [(e["module"], e["version"], e["kernel"], e["arch"], e["state"]) for e in found] == [expected]


@pytest.mark.parametrize(
    "line",
    [
        "", "   ", "Error! Could not locate dkms.conf file.", "Warning: nvidia/535.261.03: something",
        "Deprecated feature: REMAKE_INITRD (/var/lib/dkms/nvidia/535.261.03/source/dkms.conf)",
        "Error! nvidia/570.86.16: Missing the module source directory or the symbolic link pointing to it.",
        "zfs/2.1.11, 6.1.0-28-amd64, x86_64: installed", "virtualbox, 6.1.50, 5.15.0-84-generic, x86_64: installed",
        "nvidia/535.261.03, 6.1.0-28-amd64: installed", "nvidia/535.261.03, 6.1.0-28-amd64, x86_64:", "nvidia: installed",
        "NVIDIA/535.261.03: added", "nvidia/535.261.03 added", "nvidia/535.261.03, 6.1.0-28-amd64, x86_64: Installed",
    ],
)
def test_dkms_status_noise_is_left_out(line):
    assert _nvidia.parse_dkms_status(line) == []


@pytest.mark.parametrize(
    "text",
    [
        None,
        "nvidia/" + "5" * 10_000_000 + ": added",
        "nvidia/535.261.03, " + "6" * 100_000 + ", x86_64: installed",
        "nvidia/535.261.03, 6.1.0-28-amd64, x86_64: installed\x00\nnvidia/5\x00: added",
        "\x00" * 100_000,
        bytes(range(256)).decode("latin-1") * 1000,
        "nvidia" + ", nvidia" * 200_000 + ": installed",
        "nvidia/" + "1." * 300 + ": added",
        "\n".join("nvidia/535.261.03, 6.1.0-%d-amd64, x86_64: installed" % i for i in range(5000)),
        "nvidia/535.261.03, 6.1.0-28-amd64, x86_64: installed" + " (x)" * 10_000,
    ],
    ids=["none", "huge-version", "huge-kernel", "nul", "nuls", "binary", "many-commas", "dots", "many-lines", "long-detail"],
)
def test_dkms_status_hostile_text_does_not_crash(text):
    found = _nvidia.parse_dkms_status(text)
    assert len(found) <= _nvidia.MAX_DKMS_ENTRIES
    assert all("\x00" not in str(e) and len(json.dumps(e)) <= 2 * _nvidia.MAX_DKMS_LINE for e in found)


# Fixture trees: a kernel, a DKMS build of the nvidia module (installed with DKMS's link, or not), a dkms program.

def kernel(release, base="lib/modules"):
    return {f"{base}/{release}/modules.dep": "", f"{base}/{release}/kernel/drivers": None,
            f"boot/vmlinuz-{release}": "stand-in kernel image\n"}


def registered(module="nvidia-current", version="535.261.03"):
    return {f"var/lib/dkms/{module}/{version}/source": Link(f"/usr/src/{module}-{version}"),
            f"usr/src/{module}-{version}/dkms.conf": f'PACKAGE_NAME="{module}"\nPACKAGE_VERSION="{version}"\n'}


def build(release, module="nvidia-current", version="535.261.03", installed=True, link=True, where="updates/dkms", arch="x86_64"):
    files = registered(module, version)
    for ko in KOS:
        files[f"var/lib/dkms/{module}/{version}/{release}/{arch}/module/{ko}"] = "stand-in module\n"
        if installed:
            files[f"lib/modules/{release}/{where}/{ko}"] = "stand-in module\n"
    if link:
        files[f"var/lib/dkms/{module}/kernel-{release}-{arch}"] = Link(f"{version}/{release}/{arch}")
    return files


DKMS_PROGRAM = {"usr/sbin/dkms": "#!/bin/bash\n"}


def tree_status(tree, files):
    return _nvidia.dkms_tree_status(Sysroot(str(tree(files))))


def test_tree_reader_installed_built_added_broken(tree):
    files = {**build("6.1.0-27-amd64"), **build("6.1.0-28-amd64", installed=False, link=False)}
    files.update(registered("nvidia", "590.48.01"))
    files["var/lib/dkms/nvidia-open/580.95.05/source"] = Link("/usr/src/nvidia-open-580.95.05")  # source removed
    files["var/lib/dkms/zfs/2.1.11/6.1.0-28-amd64/x86_64/module/zfs.ko"] = "not ours\n"
    files["var/lib/dkms/nvidia-current/original_module/6.1.0-27-amd64/x86_64"] = None
    assert tree_status(tree, files) == [
        entry("nvidia", "590.48.01", None, None, "added"),
        entry("nvidia-current", "535.261.03", "6.1.0-27-amd64", "x86_64", "installed"),
        entry("nvidia-current", "535.261.03", "6.1.0-28-amd64", "x86_64", "built"),
        entry("nvidia-open", "580.95.05", None, None, "broken", "the source directory is missing"),
    ]


def test_tree_reader_needs_the_files_and_the_link_to_agree(tree):
    files = {**build("6.1.0-27-amd64", link=False), **build("6.1.0-28-amd64", installed=False)}
    files.update(build("6.1.0-29-amd64", version="535.247.01", installed=True, link=False))
    files["var/lib/dkms/nvidia-current/kernel-6.1.0-29-amd64-x86_64"] = Link("535.261.03/6.1.0-29-amd64/x86_64")
    states = {(e["version"], e["kernel"]): (e["state"], e["detail"]) for e in tree_status(tree, files)}
    assert states[("535.261.03", "6.1.0-27-amd64")] == ("installed", "no DKMS kernel link; the module files are in /lib/modules")
    assert states[("535.261.03", "6.1.0-28-amd64")][0] == "built"
    assert "not in /lib/modules" in states[("535.261.03", "6.1.0-28-amd64")][1]
    # the files in 6.1.0-29's updates/dkms belong to the build DKMS's link points at, not to 535.247.01
    assert states[("535.247.01", "6.1.0-29-amd64")] == ("built", None)


def test_tree_reader_rhel_extra_and_usr_lib_modules(tree):
    files = build("5.14.0-427.13.1.el9_4.x86_64", module="nvidia", version="550.54.14", where="extra")
    moved = {k.replace("lib/modules/", "usr/lib/modules/", 1) if k.startswith("lib/modules/") else k: v for k, v in files.items()}
    assert [e["state"] for e in tree_status(tree, moved)] == ["installed"]


@pytest.mark.parametrize(
    "files",
    [{"etc": None}, {"var/lib/dkms/nvidia": "a file, not a directory\n"}, {"var/lib/dkms/nvidia/535.261.03/6.1.0-28-amd64": None}],
    ids=["no-dkms-tree", "module-is-a-file", "no-source-not-registered"],
)
def test_tree_reader_empty_and_missing_trees(tree, files):
    assert tree_status(tree, files) == []


def test_installed_kernels_look_like_kernels(tree):
    files = {**kernel("6.1.0-9-amd64"), **kernel("6.1.0-28-amd64"), **kernel("6.1.0-27-amd64", base="usr/lib/modules")}
    files["lib/modules/6.1.0-13-amd64/updates/dkms/nvidia.ko"] = "left by DKMS after the kernel was removed\n"
    files["lib/modules/6.1.0-14-amd64/build"] = Link("/usr/src/linux-headers-6.1.0-14-amd64")  # headers only
    files["boot/vmlinuz-6.1.0-30-amd64"] = "an image whose modules are not installed yet\n"
    files["boot/vmlinuz-0-rescue-0123456789abcdef"] = "RHEL's rescue image\n"
    files["boot/vmlinuz"] = Link("vmlinuz-6.1.0-28-amd64")
    files["lib/modules/not a kernel\nreally/modules.dep"] = ""
    root = Sysroot(str(tree(files)))
    assert _distro.installed_kernels(root) == ["6.1.0-9-amd64", "6.1.0-27-amd64", "6.1.0-28-amd64", "6.1.0-30-amd64"]


@pytest.mark.parametrize(
    "releases, newest",
    [
        (["6.1.0-9-amd64", "6.1.0-28-amd64", "6.1.0-10-amd64"], "6.1.0-28-amd64"),
        (["5.14.0-427.el9.x86_64", "5.14.0-427.13.1.el9_4.x86_64", "5.14.0-362.24.1.el9_3.x86_64"], "5.14.0-427.13.1.el9_4.x86_64"),
        (["6.8.0-49-generic", "6.8.0-100-generic", "6.5.0-45-generic"], "6.8.0-100-generic"),
    ],
)
def test_kernel_version_order(releases, newest):
    assert sorted(releases, key=_distro.kernel_sort_key)[-1] == newest


KERNELS = ("6.1.0-27-amd64", "6.1.0-28-amd64")
GRUBENV = "# GRUB Environment Block\nsaved_entry={}\n" + "#" * 900


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, ("6.1.0-28-amd64", "newest")),
        ({"etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n'}, ("6.1.0-28-amd64", "newest")),
        ({"etc/default/grub": "GRUB_DEFAULT=saved\n",
          "boot/grub/grubenv": GRUBENV.format("gnulinux-advanced-1c2d>gnulinux-6.1.0-27-amd64-advanced-1c2d")},
         ("6.1.0-27-amd64", "grubenv")),
        ({"etc/default/grub": "GRUB_DEFAULT=saved\n",
          "boot/grub/grubenv": GRUBENV.format("Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-27-amd64")},
         ("6.1.0-27-amd64", "grubenv")),
        ({"etc/default/grub": "GRUB_DEFAULT=saved\n", "boot/grub/grubenv": GRUBENV.format("6.1.0-2")}, ("6.1.0-28-amd64", "newest")),
        ({"etc/default/grub": "GRUB_DEFAULT=saved\n"}, ("6.1.0-28-amd64", "newest")),
        ({"etc/default/grub": 'GRUB_DEFAULT="gnulinux-advanced-1c2d>gnulinux-6.1.0-27-amd64-advanced-1c2d"\n'}, ("6.1.0-27-amd64", "grub_default")),
        ({"etc/default/grub": "GRUB_DEFAULT=saved\n", "etc/default/grub.d/50-cloudimg-settings.cfg": "GRUB_DEFAULT=0\n",
          "boot/grub/grubenv": GRUBENV.format("gnulinux-6.1.0-27-amd64-advanced-1c2d")}, ("6.1.0-28-amd64", "newest")),
        ({"etc/default/grub": "GRUB_DEFAULT=1>2\n"}, ("6.1.0-28-amd64", "newest")),
    ],
    ids=["nothing", "entry-0", "saved-id", "saved-title", "saved-unknown", "saved-no-grubenv", "named", "grub.d-overrides", "menu-path"],
)
def test_default_kernel_debian(tree, files, expected):
    root = Sysroot(str(tree({**kernel(KERNELS[0]), **kernel(KERNELS[1]), **files})))
    assert _distro.default_kernel(root, DEBIAN12, list(KERNELS), FakeRun()) == expected


RHEL_KERNELS = ["5.14.0-427.el9.x86_64", "5.14.0-427.13.1.el9_4.x86_64"]


def test_default_kernel_rhel_tree_reads_the_bls_saved_entry(tree):
    files = {"etc/default/grub": "GRUB_DEFAULT=saved\n",
             "boot/grub2/grubenv": GRUBENV.format("0123456789abcdef0123456789abcdef-5.14.0-427.el9.x86_64")}
    run = FakeRun()
    root = Sysroot(str(tree(files)))
    assert _distro.default_kernel(root, ROCKY9, RHEL_KERNELS, run) == ("5.14.0-427.el9.x86_64", "grubenv")
    assert run.calls == []  # a tree is never run in


def test_default_kernel_rhel_live_asks_grubby(tree, monkeypatch):
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))
    run = FakeRun({("grubby", "--default-kernel"): (0, "/boot/vmlinuz-5.14.0-427.el9.x86_64\n", "")})
    root = Sysroot(str(tree({"etc": None})))
    assert _distro.default_kernel(root, ROCKY9, RHEL_KERNELS, run) == ("5.14.0-427.el9.x86_64", "grubby")
    # grubby missing, or answering something that is no installed kernel: the files, then the newest
    assert _distro.default_kernel(root, ROCKY9, RHEL_KERNELS, FakeRun()) == ("5.14.0-427.13.1.el9_4.x86_64", "newest")
    odd = FakeRun({("grubby", "--default-kernel"): (0, "/boot/vmlinuz-9.9.9\n", "")})
    assert _distro.default_kernel(root, ROCKY9, RHEL_KERNELS, odd) == ("5.14.0-427.13.1.el9_4.x86_64", "newest")


def test_default_kernel_without_kernels():
    assert _distro.default_kernel(Sysroot("/nonexistent"), DEBIAN12, [], FakeRun()) == (None, None)


def check(*entries, kernels=KERNELS, installed="535.261.03"):
    return _nvidia.dkms_driver_check(list(entries), list(kernels), installed)


def test_driver_check():
    both = [entry("nvidia-current", "535.261.03", k, "x86_64", "installed") for k in KERNELS]
    assert check(*both) == ("535.261.03", [], True)
    assert check(both[0], entry("nvidia-current", "535.261.03", KERNELS[1], "x86_64", "built")) == ("535.261.03", [KERNELS[1]], False)
    assert check(both[0], entry("nvidia", "535.261.03", KERNELS[1], "x86_64", "installed-weak", "from 6.1.0-27-amd64")) == ("535.261.03", [], True)
    # an older version installed for the new kernel is not the installed driver
    assert check(both[0], entry("nvidia-current", "535.247.01", KERNELS[1], "x86_64", "installed")) == ("535.261.03", [KERNELS[1]], False)
    assert check(entry("nvidia", "590.48.01", None, None, "added")) == (None, [], None)  # DKMS lacks the installed driver
    assert check(entry("nvidia", "590.48.01", None, None, "added"), installed=None) == ("590.48.01", list(KERNELS), False)
    assert check(*both, entry("nvidia", "580.95.05", None, None, "added"), installed=None) == ("580.95.05", list(KERNELS), False)
    assert check(entry("nvidia-fs", "2.17.5", KERNELS[0], "x86_64", "installed"), installed=None) == (None, [], None)
    assert check(*both, kernels=[]) == ("535.261.03", [], None)
    assert check() == (None, [], None)


# host_facts end to end: a Debian 12 image tree with the driver from Debian's packages (module nvidia-current).

DRIVER = {"var/lib/dpkg/status": "Package: nvidia-kernel-dkms\nStatus: install ok installed\nVersion: 535.261.03-1~deb12u1\n\n"
                                 "Package: nvidia-driver\nStatus: install ok installed\nVersion: 535.261.03-1~deb12u1\n"}


def debian12(extra):
    files = {"etc/os-release": fixture_text("os-release/debian12"), "proc/modules": fixture_text("proc/modules-plain"),
             "proc/sys/kernel/osrelease": "6.1.0-27-amd64\n", "sys/bus/pci/devices": None}
    files.update(kernel("6.1.0-27-amd64"))
    files.update(kernel("6.1.0-28-amd64"))
    files.update(extra)
    return files


def gather(tree, files, run=None):
    facts = _host.gather(Sysroot(str(tree(files))), run or FakeRun(), "/nonexistent")
    json.dumps(facts)
    return facts


def test_new_kernel_without_the_module_blocks_a_reboot(tree):
    facts = gather(tree, debian12({**DRIVER, **DKMS_PROGRAM, **build("6.1.0-27-amd64"), **build("6.1.0-28-amd64", installed=False, link=False)}))
    dkms = facts["nvidia"]["dkms"]
    assert dkms["source"] == "files" and dkms["version"] == "535.261.03"
    assert dkms["kernels"] == list(KERNELS) and dkms["running_kernel"] == "6.1.0-27-amd64"
    assert dkms["default_kernel"] == "6.1.0-28-amd64" and dkms["default_kernel_source"] == "newest"
    assert dkms["missing"] == ["6.1.0-28-amd64"] and dkms["ok"] is False
    assert [e["state"] for e in dkms["status"]] == ["installed", "built"]
    assert facts["reboot_blockers"] == [
        "the nvidia DKMS module 535.261.03 is not installed for kernel 6.1.0-28-amd64 (the default boot kernel): "
        "a reboot would come up without the driver"
    ]
    # a blocker is no reason to reboot: the driver is installed and not loaded, which is the only reason here
    assert facts["reboot_reasons"] == ["nvidia driver 535.261.03 installed, not loaded"]


def test_old_kernel_without_the_module_is_missing_but_blocks_nothing(tree):
    facts = gather(tree, debian12({**DRIVER, **DKMS_PROGRAM, **build("6.1.0-28-amd64")}))
    dkms = facts["nvidia"]["dkms"]
    assert dkms["ok"] is False and dkms["missing"] == ["6.1.0-27-amd64"] and dkms["default_kernel"] == "6.1.0-28-amd64"
    assert facts["reboot_blockers"] == []


def test_every_kernel_has_the_module(tree):
    facts = gather(tree, debian12({**DRIVER, **DKMS_PROGRAM, **build("6.1.0-27-amd64"), **build("6.1.0-28-amd64")}))
    assert facts["nvidia"]["dkms"]["ok"] is True and facts["nvidia"]["dkms"]["missing"] == []
    assert facts["reboot_blockers"] == []


def test_no_dkms_at_all(tree):
    facts = gather(tree, debian12(DRIVER))
    dkms = facts["nvidia"]["dkms"]
    assert dkms["source"] == "not_found" and dkms["status"] == [] and dkms["ok"] is None and dkms["version"] is None
    assert dkms["kernels"] == list(KERNELS) and facts["reboot_blockers"] == []


def test_precompiled_driver_beside_a_stale_registration(tree):
    # Ubuntu's linux-modules-nvidia packages carry the driver; DKMS still has an old version registered
    files = debian12({**DRIVER, **DKMS_PROGRAM, **build("6.1.0-27-amd64", version="525.147.05")})
    dkms = gather(tree, files)["nvidia"]["dkms"]
    assert dkms["status"][0]["version"] == "525.147.05" and dkms["version"] is None and dkms["ok"] is None


def test_no_gpu_no_driver_reads_no_dkms(tree):
    facts = gather(tree, debian12(DKMS_PROGRAM))
    dkms = facts["nvidia"]["dkms"]
    assert dkms["source"] == "skipped: no NVIDIA GPU or driver" and dkms["ok"] is None and dkms["kernels"] == list(KERNELS)


def test_dkms_tree_alone_is_enough_to_look(tree):
    # no package database says a driver is installed (a runfile install), DKMS has one: its newest is checked
    files = debian12({**DKMS_PROGRAM, **build("6.1.0-27-amd64", module="nvidia", version="580.95.05")})
    del files["proc/modules"]
    dkms = gather(tree, files)["nvidia"]["dkms"]
    assert dkms["version"] == "580.95.05" and dkms["missing"] == ["6.1.0-28-amd64"] and dkms["ok"] is False


def live(monkeypatch):
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))


def test_live_host_runs_dkms_status(tree, monkeypatch):
    live(monkeypatch)
    status = "nvidia-current/535.261.03, 6.1.0-27-amd64, x86_64: installed\nnvidia-current/535.261.03, 6.1.0-28-amd64, x86_64: installed\n"
    run = FakeRun({("dkms", "status"): (0, status, "")})
    facts = gather(tree, debian12(DRIVER), run)
    assert ["dkms", "status"] in run.calls
    assert facts["nvidia"]["dkms"]["source"] == "dkms" and facts["nvidia"]["dkms"]["ok"] is True


def test_live_host_dkms_3_output_with_a_kernel_only_built(tree, monkeypatch):
    live(monkeypatch)
    files = debian12(DRIVER)
    files.update(kernel("6.1.0-29-amd64"))
    run = FakeRun({("dkms", "status"): (0, fixture_text("dkms/status-dkms3-debian12.txt"), "")})
    facts = gather(tree, files, run)
    dkms = facts["nvidia"]["dkms"]
    assert dkms["missing"] == ["6.1.0-29-amd64"] and dkms["default_kernel"] == "6.1.0-29-amd64"
    assert "kernel 6.1.0-29-amd64 (the default boot kernel)" in facts["reboot_blockers"][0]


def test_live_host_without_dkms(tree, monkeypatch):
    live(monkeypatch)
    run = FakeRun()
    facts = gather(tree, debian12({**DRIVER, **build("6.1.0-27-amd64")}), run)
    assert ["dkms", "status"] in run.calls
    assert facts["nvidia"]["dkms"]["source"] == "not_found" and facts["nvidia"]["dkms"]["ok"] is None


def test_live_host_dkms_failing_falls_back_to_the_files(tree, monkeypatch):
    live(monkeypatch)
    run = FakeRun({("dkms", "status"): (4, "", "Error! Could not read /etc/dkms/framework.conf\n")})
    facts = gather(tree, debian12({**DRIVER, **build("6.1.0-27-amd64"), **build("6.1.0-28-amd64")}), run)
    assert facts["nvidia"]["dkms"]["source"] == "files" and facts["nvidia"]["dkms"]["ok"] is True


def test_hostile_trees_do_not_crash(tree):
    files = debian12({**DRIVER, **DKMS_PROGRAM, **build("6.1.0-27-amd64")})
    files["var/lib/dkms/nvidia-current/kernel-6.1.0-28-amd64-x86_64"] = Link("kernel-6.1.0-28-amd64-x86_64")  # a loop
    files["var/lib/dkms/nvidia-current/kernel-x"] = Link("../../../../../../../etc/passwd")
    files["var/lib/dkms/nvidia-current/535.261.03/6.1.0-28-amd64/x86_64/module"] = "a file, not a directory\n"
    files["var/lib/dkms/nvidia-bad\nname/1.0/source"] = None
    files["var/lib/dkms/nvidia-" + "x" * 200 + "/1.0/source"] = None
    files["var/lib/dkms/nvidia-loop/1.0/source"] = Link("source")
    files["lib/modules/" + "9" * 250] = None
    files["etc/default/grub"] = "GRUB_DEFAULT=saved\n"
    files["boot/grub/grubenv"] = b"saved_entry=\x00\xff\xfe" + b"6" * 70000 + b"\n"
    files["boot/grub2/grubenv"] = Link("grubenv")
    facts = gather(tree, files)
    dkms = facts["nvidia"]["dkms"]
    assert dkms["kernels"] == list(KERNELS) and dkms["default_kernel"] == "6.1.0-28-amd64"
    assert dkms["ok"] is False and dkms["missing"] == ["6.1.0-28-amd64"]
    assert [(e["module"], e["kernel"], e["state"]) for e in dkms["status"]] == [
        ("nvidia-current", "6.1.0-27-amd64", "installed"), ("nvidia-loop", None, "broken")]
