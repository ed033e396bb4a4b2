# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Distribution, package manager, architecture, kernel and container detection.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import platform
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot, parse_kv_file

# ID (or an ID_LIKE entry) -> family
FAMILIES = {
    "debian": "debian",
    "ubuntu": "debian",
    "linuxmint": "debian",
    "pop": "debian",
    "raspbian": "debian",
    "rhel": "redhat",
    "centos": "redhat",
    "rocky": "redhat",
    "almalinux": "redhat",
    "fedora": "redhat",
    "ol": "redhat",
    "amzn": "redhat",
    "sles": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "suse": "suse",
    "arch": "arch",
    "alpine": "alpine",
}

# ELF e_machine -> uname -m style name
_ELF_MACHINES = {0x03: "i386", 0x3E: "x86_64", 0xB7: "aarch64", 0x15: "ppc64le", 0x16: "s390x", 0xF3: "riscv64"}


def read_os_release(root: Sysroot) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        text = root.read(candidate)
        if text is not None:
            return parse_kv_file(text)
    return {}


def distro_facts(root: Sysroot) -> dict[str, t.Any]:
    """``{id, name, version, major, codename, family, like}`` from os-release."""
    osr = read_os_release(root)
    distro_id = (osr.get("ID") or "").lower() or None
    like = (osr.get("ID_LIKE") or "").lower().split()
    version = osr.get("VERSION_ID") or None
    if version is None and distro_id == "debian":
        # testing/sid carry no VERSION_ID; /etc/debian_version says e.g. "trixie/sid"
        version = None
    family = None
    for candidate in [distro_id or ""] + like:
        if candidate in FAMILIES:
            family = FAMILIES[candidate]
            break
    major = version.split(".")[0] if version else None
    codename = osr.get("VERSION_CODENAME") or osr.get("UBUNTU_CODENAME") or None
    return {
        "id": distro_id,
        "name": osr.get("PRETTY_NAME") or osr.get("NAME") or None,
        "version": version,
        "major": major,
        "codename": codename,
        "family": family or ("unknown" if distro_id else None),
        "like": like,
    }


def pkg_mgr_for(distro: dict[str, t.Any], root: Sysroot) -> str | None:
    """apt, dnf or yum: by family and release, confirmed by the program's presence."""
    family = distro.get("family")
    if family == "debian":
        return "apt"
    if family == "redhat":
        major = distro.get("major") or ""
        is_el7 = distro.get("id") != "fedora" and re.fullmatch(r"[0-9]+", major) is not None and int(major) <= 7
        if is_el7 and not root.exists("usr/bin/dnf"):
            return "yum"
        return "dnf"
    for path, name in (("usr/bin/apt-get", "apt"), ("usr/bin/dnf", "dnf"), ("usr/bin/yum", "yum")):
        if root.exists(path):
            return name
    return None


def arch_fact(root: Sysroot) -> str | None:
    """The machine architecture: the kernel's own word, else the ELF type of /bin/sh."""
    value = root.read_line("proc/sys/kernel/arch")
    if value:
        return value
    if root.live:
        return platform.machine() or None
    for candidate in ("usr/bin/sh", "bin/sh", "usr/bin/env"):
        header = root.read_bytes(candidate, limit=20)
        if header and header[:4] == b"\x7fELF" and len(header) >= 20:
            little = header[5] == 1
            machine = int.from_bytes(header[18:20], "little" if little else "big")
            if machine in _ELF_MACHINES:
                return _ELF_MACHINES[machine]
    return None


def kernel_fact(root: Sysroot) -> str | None:
    value = root.read_line("proc/sys/kernel/osrelease")
    if value:
        return value
    if root.live:
        return platform.release() or None
    return None


# A kernel release as a directory or file name: an ASCII digit first, then what releases are made of
# (6.1.0-28-amd64, 5.14.0-427.13.1.el9_4.x86_64, 6.8.0-1015-aws, 6.6.31+rpt-rpi-v8).
_KERNEL_RELEASE = re.compile(r"[0-9][0-9A-Za-z.+_~-]{0,199}")
# Where kernel modules live: /lib/modules, and /usr/lib/modules for trees whose /lib is not (yet) a link to it.
MODULES_DIRS = ("lib/modules", "usr/lib/modules")
GRUBENV_PATHS = ("boot/grub/grubenv", "boot/grub2/grubenv")


def kernel_sort_key(release: str) -> tuple[tuple[int, int, str], ...]:
    """Kernel releases in version order (6.1.0-9 before 6.1.0-28): numbers compare as numbers and after words, as
    rpm's version comparison has it (5.14.0-427.13.1.el9_4 after 5.14.0-427.el9), words as text.

    An approximation of ``sort -V`` and rpm's order, which GRUB's scripts and BLS use to put the newest kernel first."""
    return tuple((1, int(part), "") if part.isdigit() else (0, 0, part) for part in re.findall(r"[0-9]+|[A-Za-z]+", release))


def _holds_kernel(root: Sysroot, base: str, release: str) -> bool:
    """A modules directory of an installed kernel: its module tree or depmod's index.

    A directory with only ``updates/`` (what DKMS leaves of a removed kernel) or only a ``build`` link (Debian's
    linux-headers package ships that link, so it outlives the kernel image) is not one."""
    return root.isdir(base, release, "kernel") or root.exists(base, release, "modules.dep")


def installed_kernels(root: Sysroot) -> list[str]:
    """Kernel releases installed in the tree, oldest first: ``/lib/modules/<release>/`` directories that hold a
    kernel's modules, and ``/boot/vmlinuz-<release>`` images (RHEL's ``vmlinuz-0-rescue-*`` left out)."""
    found = set()
    for base in MODULES_DIRS:
        for release in root.listdir(base):
            if _KERNEL_RELEASE.fullmatch(release) and _holds_kernel(root, base, release):
                found.add(release)
    for name in root.listdir("boot"):
        release = name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else ""
        if _KERNEL_RELEASE.fullmatch(release) and "rescue" not in release:
            found.add(release)
    return sorted(found, key=kernel_sort_key)


def kernel_named_in(text: str, kernels: list[str]) -> str | None:
    """The installed kernel a boot entry names: ``gnulinux-6.1.0-28-amd64-advanced-<uuid>``, a BLS id
    ``<machine-id>-5.14.0-427.el9.x86_64``, ``/boot/vmlinuz-<release>``; the longest when several fit."""
    best = None
    for release in kernels:
        if re.search(rf"(?<![0-9A-Za-z.]){re.escape(release)}(?![0-9A-Za-z.+_~])", text):
            if best is None or len(release) > len(best):
                best = release
    return best


def grub_default_setting(root: Sysroot) -> str:
    """GRUB_DEFAULT from /etc/default/grub and the /etc/default/grub.d/*.cfg files that override it (GRUB's 0 when unset)."""
    setting = "0"
    for path in ["etc/default/grub"] + sorted(p.lstrip("/") for p in root.glob("etc/default/grub.d/*.cfg")):
        setting = parse_kv_file(root.read(path, limit=65536)).get("GRUB_DEFAULT", setting)
    return setting


def default_kernel(root: Sysroot, distro: dict[str, t.Any], kernels: list[str], run: t.Callable[[list[str]], t.Any]) -> tuple[str | None, str | None]:
    """(the kernel the boot loader starts when nobody picks one, how that was read).

    How, in order: ``grubby`` (RHEL family, live system only, where it is installed); GRUB_DEFAULT=saved and the
    grubenv's ``saved_entry`` (``/boot/grub/grubenv``, ``/boot/grub2/grubenv``); a GRUB_DEFAULT that names a
    kernel; else ``newest``, a heuristic: GRUB's scripts list the newest kernel first and boot entry 0 by default.
    A one-shot ``grub-reboot`` (grubenv ``next_entry``) and boot loaders other than GRUB are not read.
    """
    if not kernels:
        return None, None
    if distro.get("family") == "redhat" and root.live:
        result = run(["grubby", "--default-kernel"])
        named = kernel_named_in(result.out, kernels) if result is not None and result.rc == 0 else None
        if named:
            return named, "grubby"
    setting = grub_default_setting(root)
    if setting == "saved":
        for candidate in GRUBENV_PATHS:
            entry = parse_kv_file(root.read(candidate, limit=65536)).get("saved_entry")
            named = kernel_named_in(entry, kernels) if entry else None
            if named:
                return named, "grubenv"
    elif setting not in ("", "0"):
        named = kernel_named_in(setting, kernels)
        if named:
            return named, "grub_default"
    return kernels[-1], "newest"


_CGROUP_HINTS = (
    ("kubepods", "kubernetes"),
    ("docker", "docker"),
    ("libpod", "podman"),
    ("lxc", "lxc"),
    ("containerd", "containerd"),
)


def container_fact(root: Sysroot) -> str | None:
    """docker, podman, lxc, systemd-nspawn, kubernetes, wsl, ... or None."""
    value = root.read_line("run/systemd/container")
    if value:
        return value.lower()
    if root.exists(".dockerenv"):
        return "docker"
    if root.exists("run/.containerenv"):
        return "podman"
    environ = root.read_bytes("proc/1/environ", limit=65536) or b""
    for item in environ.split(b"\0"):
        if item.startswith(b"container="):
            return item.split(b"=", 1)[1].decode("utf-8", "replace").lower() or None
    cgroup = root.read("proc/1/cgroup") or ""
    for hint, name in _CGROUP_HINTS:
        if re.search(rf"[/:.-]{hint}[-/:.]", cgroup):
            return name
    if root.exists("proc/vz") and not root.exists("proc/bc"):
        return "openvz"
    osrelease = (root.read_line("proc/sys/kernel/osrelease") or "").lower()
    if "microsoft" in osrelease or "wsl" in osrelease:
        return "wsl"
    return None


_VIRT_VENDORS = (
    ("amazon ec2", "aws"),
    ("google compute engine", "gce"),
    ("microsoft corporation", "hyperv"),
    ("vmware", "vmware"),
    ("virtualbox", "virtualbox"),
    ("innotek", "virtualbox"),
    ("qemu", "kvm"),
    ("kvm", "kvm"),
    ("openstack", "kvm"),
    ("xen", "xen"),
)


def virtualization_fact(root: Sysroot) -> str | None:
    """The hypervisor named by DMI (kvm, vmware, aws, gce, ...), or None on bare metal/unknown."""
    dmi = " ".join(
        (root.read_line("sys/class/dmi/id", name) or "").lower()
        for name in ("sys_vendor", "product_name", "bios_vendor")
    )
    if not dmi.strip():
        return None
    for hint, name in _VIRT_VENDORS:
        if hint in dmi:
            return name
    return None


SECURE_BOOT_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def secure_boot_from_efivar(data: bytes | None) -> str | None:
    """An efivarfs SecureBoot variable: 4 bytes of attributes, then 1 value byte."""
    if not data or len(data) < 5:
        return None
    return "enabled" if data[4] == 1 else "disabled"


def secure_boot_from_mokutil(output: str) -> str | None:
    text = output.lower()
    if "secureboot enabled" in text:
        return "enabled"
    if "secureboot disabled" in text:
        return "disabled"
    return None


def secure_boot_fact(root: Sysroot, container: str | None, run: t.Callable[[list[str]], t.Any]) -> str:
    """enabled / disabled / unknown, from efivars, then mokutil."""
    state = secure_boot_from_efivar(root.read_bytes("sys/firmware/efi/efivars", SECURE_BOOT_VAR, limit=16))
    if state:
        return state
    if root.isdir("sys/firmware/efi"):
        if root.live:
            result = run(["mokutil", "--sb-state"])
            if result is not None:
                state = secure_boot_from_mokutil(result.out + result.err)
                if state:
                    return state
        if root.isdir("sys/firmware/efi/efivars") and root.listdir("sys/firmware/efi/efivars"):
            return "disabled"  # EFI variables readable, SecureBoot variable absent
        return "unknown"
    if container is None and root.isdir("sys/firmware") and root.isdir("sys/bus"):
        return "disabled"  # legacy BIOS boot: no EFI, so no Secure Boot
    return "unknown"
