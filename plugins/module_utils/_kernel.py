# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""A driver that survives the kernel: kernel package holds, and DKMS module signing with a given MOK key pair.

PRIVATE to the collection: no compatibility promise outside it.

Kernel holds (nvidia_driver's ``hold_kernel``): the running kernel's packages and its flavour's metapackages
are held (apt-mark hold, dnf versionlock), and the names the collection held are recorded in a state file of its
own (``HOLDS_FILE``), so that releasing them later never releases an administrator's hold.

DKMS signing (``mok_key`` with ``mok_certificate``): DKMS 3.x reads ``mok_signing_key`` and ``mok_certificate``
from ``/etc/dkms/framework.conf`` and then from ``/etc/dkms/framework.conf.d/*.conf`` (``read_framework_conf``
in Debian 12's dkms 3.0.10, checked in the package on 2026-12-03), so a drop-in of the collection's own sets the
pair and the administrator's framework.conf is never edited.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

HOLDS_FILE = "/var/lib/mlhost/kernel-holds.json"
DKMS_SIGNING_FILE = "/etc/dkms/framework.conf.d/mlhost-mok-signing.conf"

# A kernel release as uname -r prints it, safe as a package-name part and a dpkg-query glob.
RELEASE = re.compile(r"[0-9][A-Za-z0-9._+~-]{0,127}")
# The ABI part of a Debian/Ubuntu kernel release: 6.1.0-40 (Debian 12), 6.12.48+deb13 (Debian 13), 6.8.0-49 (Ubuntu);
# the flavour follows (amd64, cloud-amd64, rt-arm64, generic, aws, nvidia, ...).
DEB_RELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9]+(?:\+[A-Za-z0-9.~]+)?|\+[A-Za-z0-9.~]+)-([a-z][a-z0-9-]*)")
# A name that carries a kernel version (three numbers) is a kernel of one ABI, not a metapackage.
KERNEL_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
# The RHEL-family kernel packages of the running version (kernel is the meta of kernel-core and kernel-modules).
KERNEL_RPMS = ("kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra", "kernel-devel")
RPM_ARCHES = (".x86_64", ".aarch64", ".ppc64le", ".s390x")
# Paths written into a shell-sourced DKMS file: no quoting, no expansion.
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+-]{1,255}")

Installed = t.Dict[str, t.Tuple[str, bool]]  # name -> (version, held)


def check_release(release: str) -> str:
    if not RELEASE.fullmatch(release or ""):
        raise ModuleError(f"The running kernel's release {release!r} is not one a package can be named after: hold_kernel cannot "
                          "tell its packages. Set hold_kernel: false. Nothing was changed.")
    return release


def deb_flavour(release: str) -> str | None:
    """The flavour of a Debian or Ubuntu kernel release ('6.1.0-40-cloud-amd64' -> 'cloud-amd64'), None when not one."""
    match = DEB_RELEASE.fullmatch(release)
    return match.group(1) if match else None


def query_patterns(pkg_mgr: str, release: str) -> list[str]:
    """The package globs (dpkg-query) or names (rpm) that find the running kernel's packages and its metapackages."""
    if pkg_mgr == "dnf":
        return list(KERNEL_RPMS)
    patterns = [f"linux-*-{release}"]
    flavour = deb_flavour(release)
    if flavour:
        patterns += [f"linux-*-{flavour}", f"linux-*-{flavour}-hwe-*", f"linux-*-{flavour}-*-edge"]
    return patterns


def rpm_running_vr(release: str) -> str:
    """'5.14.0-427.13.1.el9_4.x86_64' -> '5.14.0-427.13.1.el9_4' (the version-release an rpm of that kernel has)."""
    for arch in RPM_ARCHES:
        if release.endswith(arch):
            return release[: -len(arch)]
    return release


def kernel_packages(pkg_mgr: str, release: str, installed: Installed) -> tuple[list[str], list[str]]:
    """(the running kernel's own installed packages, its flavour's installed metapackages).

    apt: the running kernel's packages are every installed ``linux-*-<release>`` (image, headers, modules,
    modules-extra, Ubuntu's precompiled linux-modules-nvidia-*); the metas are the installed ``linux-*-<flavour>``
    names that carry no kernel version (linux-image-amd64, linux-headers-amd64, linux-generic, linux-image-generic-hwe-24.04,
    linux-modules-nvidia-550-server-generic), the ones that pull a new kernel in. dnf: the kernel packages of the running
    version-release, as versionlock specs (name-version-release)."""
    if pkg_mgr == "dnf":
        vr = rpm_running_vr(release)
        own = [f"{name}-{vr}" for name in KERNEL_RPMS if name in installed and installed[name][0].split(":", 1)[-1] == vr]
        return own, []
    own = sorted(n for n in installed if n.endswith(f"-{release}") and n.startswith("linux-"))
    flavour = deb_flavour(release)
    metas = []
    if flavour:
        for name in sorted(installed):
            if name in own or not name.startswith("linux-") or KERNEL_VERSION.search(name):
                continue
            if name.endswith(f"-{flavour}") or f"-{flavour}-hwe-" in name or (f"-{flavour}-" in name and name.endswith("-edge")):
                metas.append(name)
    return own, metas


def spec_name(pkg_mgr: str, spec: str) -> str:
    """The package name of a hold spec (dnf's name-version-release; apt's name)."""
    if pkg_mgr != "dnf":
        return spec
    for name in sorted(KERNEL_RPMS, key=len, reverse=True):
        if spec.startswith(name + "-") and spec[len(name) + 1:2 + len(name)].isdigit():
            return name
    return spec


def read_record(data: bytes | None) -> list[str]:
    """The holds the collection recorded (``HOLDS_FILE``); [] when there is none or it is not ours."""
    if not data:
        return []
    try:
        record = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(record, dict) or record.get("managed_by") != "mlinfra.mlhost":
        return []
    held = record.get("held")
    return sorted({n for n in held if isinstance(n, str) and n}) if isinstance(held, list) else []


def record_bytes(pkg_mgr: str, held: t.Iterable[str]) -> bytes | None:
    """The state file's content for the holds the collection made (None: no file, none are left)."""
    names = sorted(set(held))
    if not names:
        return None
    record = {"managed_by": "mlinfra.mlhost",
              "about": "kernel packages nvidia_driver (hold_kernel) held; only these are released by hold_kernel: false",
              "pkg_mgr": pkg_mgr, "held": names}
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


class HoldPlan(t.NamedTuple):
    hold: list[str]        # to hold now (not held by anyone)
    release: list[str]     # holds of ours to release
    kept: list[str]        # wanted, already held by someone else (an administrator): left alone, not recorded
    record: list[str]      # the holds recorded as ours after the run
    wanted: list[str]      # what hold_kernel holds on this host


def plan_holds(pkg_mgr: str, want: bool, wanted: list[str], installed: Installed, recorded: list[str]) -> HoldPlan:
    """What to hold and release so that, with ``want``, ``wanted`` is held; without it, none of our holds remain.

    A hold we recorded on a package no longer wanted (another running kernel) is released; a hold nobody recorded
    is an administrator's and is never released."""
    def held(spec: str) -> bool:
        entry = installed.get(spec_name(pkg_mgr, spec))
        return bool(entry and entry[1])

    targets = wanted if want else []
    ours = [r for r in recorded if held(r)]  # a recorded hold someone released since is not ours any more
    hold = [n for n in targets if not held(n)]
    kept = [n for n in targets if held(n) and n not in recorded]
    release = [r for r in ours if r not in targets]
    record = sorted((set(ours) - set(release)) | set(hold))
    return HoldPlan(hold, release, kept, record, list(targets))


# Ubuntu's signed precompiled modules ---------------------------------------------------
# Canonical builds the NVIDIA modules for each kernel ABI (source linux-restricted-modules) and signs them with the
# kernel's own key, so they load under Secure Boot without a MOK: linux-modules-nvidia-<branch>[-server][-open]-<release>
# for one ABI, and the flavour's meta linux-modules-nvidia-<branch>[-server][-open]-<flavour> (generic, aws, nvidia,
# generic-hwe-24.04, ...) that follows the kernel meta. The userspace without DKMS is
# nvidia-headless-no-dkms-<branch>[-server][-open] with nvidia-utils-<branch>[-server]. Names checked on
# packages.ubuntu.com (noble, questing, resolute) on 2026-12-03.


class Precompiled(t.NamedTuple):
    meta: str          # follows the kernel meta (not held with the driver; hold_kernel holds it with the kernel)
    abi: str           # the running kernel's modules
    userspace: list[str]
    versioned: list[str]


def precompiled_packages(branch: str, is_open: bool, release: str, flavour: str, server: bool) -> Precompiled:
    suffix = ("-server" if server else "") + ("-open" if is_open else "")
    headless = f"nvidia-headless-no-dkms-{branch}{suffix}"
    return Precompiled(f"linux-modules-nvidia-{branch}{suffix}-{flavour}", f"linux-modules-nvidia-{branch}{suffix}-{release}",
                       [headless, f"nvidia-utils-{branch}{'-server' if server else ''}"], [headless])


def kernel_meta_flavour(flavour: str, installed: t.Iterable[str]) -> str:
    """The flavour the kernel meta installed follows: 'generic-hwe-24.04' where linux-image-generic-hwe-24.04 is
    installed (an HWE host), else the release's own ('generic')."""
    hwe = sorted(n[len("linux-image-"):] for n in installed if n.startswith(f"linux-image-{flavour}-hwe-") and not n.endswith("-edge"))
    return hwe[-1] if hwe else flavour


# DKMS signing ------------------------------------------------------------------------


def check_key_options(params: dict[str, t.Any]) -> None:
    """mok_key and mok_certificate: both or neither, absolute plain paths (they go into a shell-sourced file)."""
    key, cert = params.get("mok_key") or "", params.get("mok_certificate") or ""
    if key and not cert:
        raise ModuleError("mok_key was given without mok_certificate: DKMS signs with a key pair, give the certificate "
                          "(DER, the file mokutil --import enrolls) with it. Nothing was changed.")
    for option, value in (("mok_key", key), ("mok_certificate", cert)):
        if value and not SAFE_PATH.fullmatch(value):
            raise ModuleError(f"{option} must be an absolute path of letters, digits and ._/+- only (it is written into "
                              f"DKMS's shell-read configuration); {value!r} is not. Nothing was changed.")


def signing_conf(key: str, cert: str) -> bytes:
    """The DKMS drop-in that makes DKMS sign the modules it builds with the given pair."""
    return (
        "# Managed by mlinfra.mlhost: edits here are overwritten.\n"
        "# DKMS signs the modules it builds (the nvidia module among them) with this Machine Owner Key pair;\n"
        "# read after /etc/dkms/framework.conf, which is left as the administrator wrote it.\n"
        f'mok_signing_key="{key}"\n'
        f'mok_certificate="{cert}"\n'
    ).encode()


def public_key_of(text: str) -> str | None:
    """The PEM public key block in openssl's output (``x509 -pubkey -noout`` or ``pkey -pubout``), normalised."""
    match = re.search(r"-----BEGIN PUBLIC KEY-----\s*(.*?)\s*-----END PUBLIC KEY-----", text or "", re.S)
    return re.sub(r"\s+", "", match.group(1)) if match else None


def enrol_steps(cert: str) -> str:
    return (f"enroll it with 'mokutil --import {cert}' (it asks for a one-time password), reboot, choose 'Enroll MOK' in the "
            "MOK manager at the console and give that password, then rerun")
