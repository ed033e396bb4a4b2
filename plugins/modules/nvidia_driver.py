#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_driver
short_description: Install the NVIDIA driver from the distribution or NVIDIA's repository, held, with nouveau kept out
version_added: 1.0.0
requirements:
  - apt (C(apt-get), C(apt-mark), C(dpkg-query)) on Debian and Ubuntu, or dnf (with C(rpm)) on RHEL, Rocky, Alma and
    Fedora, on the managed host
  - an NVIDIA GPU to load the driver (installing needs none)
description:
  - Installs the NVIDIA driver of a branch and flavor from the distribution (Debian's non-free archive, Ubuntu's
    C(nvidia-driver-<branch>[-server][-open])) or from NVIDIA's CUDA repository (or a mirror of it), and keeps it
    there, a branch pin that cannot move.
  - Before anything is installed, checks that the source carries what is asked (Debian 12 carries the 535 branch only, so
    asking 580 from O(source=distro) fails and names O(source=nvidia_repo)), that the packages of the driver come at
    one version (Debian 12's open kernel modules lag its driver), and that the running kernel's headers exist for DKMS.
  - On Debian, enables the C(contrib), C(non-free) and C(non-free-firmware) components in a file of its own for the
    archive entries that lack them; the administrator's source files are not edited.
  - Then installs the driver, the DKMS kernel module package and the kernel headers, C(nvidia-smi) and the persistence
    daemon; holds the driver's packages (apt-mark hold, dnf versionlock) so that upgrades cannot replace them under a
    running job; blacklists nouveau (and rebuilds the initramfs when that changed); enables C(nvidia-persistenced).
  - From NVIDIA's repository on Debian and Ubuntu, a branch is held the way NVIDIA does it now. From R590 the packages
    carry no branch in their names, so C(nvidia-driver-pinning-<branch>) (an apt preferences file of NVIDIA's) is
    installed first, then the unversioned C(nvidia-open) or C(cuda-drivers). Before R590 the branch metas
    C(nvidia-open-<branch>) and C(cuda-drivers-<branch>) are installed, after the branch's pinning package where the
    repository carries one. Their components depend C(>=) on each other and reach newer branches. Before the driver is
    installed, the candidates apt would take and the simulated install are checked to be on the branch, and anything
    outside it is refused with the fix.
  - From NVIDIA's repository on dnf hosts, once the package lists are fresh, the branch's module stream
    (C(nvidia-driver:<branch>-open) or C(-dkms)) is enabled on RHEL 8 and 9 only when C(dnf module list) offers it
    (NVIDIA's streams were found up to branch 580). Otherwise, and always on RHEL 10 and Fedora (which have no module
    streams), the branch's pinning package is installed first where the repository has one. The driver is then
    installed by the exact newest version of the branch (C(nvidia-open), C(cuda-drivers), or on RHEL 8 and 9 its
    components) and versionlocked. The versions dnf would take (C(dnf repoquery), C(dnf install --assumeno)) must be on
    the branch, and a repository with nothing of the branch is refused, naming what it offers.
  - NVIDIA's repository key is checked by fingerprint before it is written (O(repo_key_fingerprints), or NVIDIA's
    published key for the tree when O(repo_key) is empty), so O(source=nvidia_repo) needs no key options on an online
    host.
  - A branch change unholds, upgrades and holds again. O(state=absent) unholds and removes the driver's packages and the
    blacklist file.
  - Says whether a reboot is needed, the way M(mlinfra.mlhost.host_facts) does (driver installed but not loaded, or
    another version loaded, or nouveau loaded). It never reboots.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  branch:
    description:
      - The driver branch, three digits (V(535), V(550), V(580)). Empty takes what the source offers (the distribution's
        branch, or the newest in NVIDIA's repository).
    type: str
    default: ""
  version:
    description:
      - The exact driver version the source must provide (V(550.163.01)). When the source offers another version the
        module refuses, with nothing changed. Empty accepts the source's current version of the branch.
    type: str
    default: ""
  flavor:
    description:
      - V(open) NVIDIA's open kernel modules, V(proprietary) the closed ones.
      - V(auto) takes V(open) from branch 560 on (NVIDIA's default since then; Blackwell GPUs need it) and V(proprietary)
        before.
    type: str
    choices: [auto, open, proprietary]
    default: auto
  source:
    description:
      - V(distro) the distribution's own packages; V(nvidia_repo) NVIDIA's CUDA repository (or O(repo_url)).
      - V(auto) takes V(distro) on Debian when the branch asked is the one Debian carries (or none is asked) and on
        Ubuntu, and V(nvidia_repo) otherwise (RHEL family, Fedora, other branches).
    type: str
    choices: [auto, distro, nvidia_repo]
    default: auto
  hold:
    description: Hold (apt) or versionlock (dnf) the driver's packages so that upgrades cannot replace them.
    type: bool
    default: true
  blacklist_nouveau:
    description: Write C(/etc/modprobe.d/mlhost-blacklist-nouveau.conf) and rebuild the initramfs when it changed.
    type: bool
    default: true
  persistence:
    description: Enable the C(nvidia-persistenced) service.
    type: bool
    default: true
  exclude_from_automatic_upgrades:
    description:
      - On apt hosts, write C(/etc/apt/apt.conf.d/51mlhost-nvidia-no-unattended-upgrades), a file of the collection's own
        that adds the driver's package name patterns (C(nvidia-), C(libnvidia-), C(libcuda), C(cuda-),
        C(firmware-nvidia-), C(xserver-xorg-video-nvidia)) to C(Unattended-Upgrade::Package-Blacklist). apt merges the
        list with the administrator's own (C(50unattended-upgrades) is never edited), so unattended-upgrades leaves the
        driver, CUDA and fabric manager alone even where O(hold=false); a driver bumped under running jobs is what
        gives "Driver/library version mismatch".
      - On dnf hosts there is nothing to write, since C(dnf-automatic) honours the versionlock that O(hold) sets.
      - O(state=absent) removes the file.
    type: bool
    default: true
  mok_certificate:
    description:
      - On a host with Secure Boot enabled, the certificate of the Machine Owner Key that DKMS signs the nvidia module
        with. Before an install, the module checks the certificate exists and C(mokutil --test-key) says it is enrolled,
        and refuses otherwise (a module the kernel refuses to load is a driver that "installed fine" and does not work),
        naming the steps to enroll it.
      - Empty looks for DKMS's own (C(/var/lib/dkms/mok.pub)) and Ubuntu's shim-signed one (C(/var/lib/shim-signed/mok/MOK.der)).
      - Not read without Secure Boot, or in a container (the host's kernel loads the module there), unless O(mok_key) is
        given too.
    type: str
    default: ""
  mok_key:
    description:
      - The private key (a path on the host, unencrypted, as DKMS signs unattended) of the Machine Owner Key pair whose
        certificate is O(mok_certificate), which must then be given too. Its content is never read by the module or shown.
      - With it, the module checks with C(openssl) that the key and the certificate are one pair (their public keys are
        equal), and writes C(/etc/dkms/framework.conf.d/mlhost-mok-signing.conf), a file of the collection's own that sets
        DKMS's C(mok_signing_key) and C(mok_certificate), so DKMS signs every module it builds with the pair (dkms 3.0 and
        later read C(framework.conf.d/*.conf) after C(/etc/dkms/framework.conf), which is never edited). On a Secure
        Boot host the certificate must also be enrolled (C(mokutil --test-key)) before a DKMS install.
      - Empty removes that file (when the collection wrote it) and leaves DKMS to its own key pair.
      - Letters, digits and C(._/+-) only, as an absolute path (it is written into a file DKMS reads as shell).
    type: str
    default: ""
    version_added: 1.0.0
  kernel_modules:
    description:
      - Where the kernel modules come from. V(dkms) DKMS builds them for each kernel (the distribution's or NVIDIA's
        C(*-dkms) package, with the kernel headers); on a Secure Boot host they must be signed with an enrolled Machine
        Owner Key (O(mok_key), O(mok_certificate)).
      - V(precompiled) Ubuntu's signed precompiled modules (O(source=distro) on Ubuntu only) -
        C(linux-modules-nvidia-<branch>-server-<flavour>), the meta that follows the kernel's flavour (C(generic),
        C(aws), C(generic-hwe-24.04) on an HWE host), and C(linux-modules-nvidia-<branch>-server-<release>) for the
        running kernel, with the userspace C(nvidia-headless-no-dkms-<branch>-server) and C(nvidia-utils-<branch>-server).
        Canonical signs them with the kernel's key, so they load under Secure Boot without a MOK. They follow the
        kernel, so they are not held with the driver (O(hold_kernel) holds them with the kernel). Refused on Debian, the
        RHEL family and from NVIDIA's repository, which have none, naming V(dkms); refused when the archive has no
        modules for the running kernel.
      - V(auto) takes V(precompiled) on an Ubuntu host with Secure Boot enabled whose archive has them for the running
        kernel, and V(dkms) everywhere else.
    type: str
    choices: [auto, dkms, precompiled]
    default: auto
    version_added: 1.0.0
  hold_kernel:
    description:
      - Hold the running kernel so that upgrades cannot bring a kernel the driver's module was not built for. On apt
        hosts, C(apt-mark hold) of every installed package of the running kernel (C(linux-*-<release>), its image,
        headers and modules) and of its flavour's installed metapackages (Debian's C(linux-image-amd64) and
        C(linux-headers-amd64), Ubuntu's C(linux-generic), C(linux-image-generic), C(linux-headers-generic), their
        C(-hwe-) forms, the precompiled C(linux-modules-nvidia-<branch>-server-<flavour>)); on dnf hosts,
        C(dnf versionlock) of C(kernel), C(kernel-core), C(kernel-modules) and C(kernel-devel) at the running version.
      - The holds the collection made are recorded in C(/var/lib/mlhost/kernel-holds.json); V(false) (the default) and
        O(state=absent) release those only, never a hold the administrator made (a package already held is left as it
        is and not recorded). When the running kernel changes, the recorded holds of the old one are released.
      - A host whose running kernel has no installed package is refused; in a container (whose kernel is the host's)
        the installed metapackages of the running kernel's flavour are held, with a warning.
    type: bool
    default: false
    version_added: 1.0.0
  kernel_headers:
    description:
      - Install the headers of the running kernel, which DKMS needs to build the module. Missing from the sources, they
        are an error on a host and a warning in a container (a container's driver is loaded by its host's kernel).
    type: bool
    default: true
  server_packages:
    description: On Ubuntu, the C(-server) driver packages (the data-center ones, with a longer support life).
    type: bool
    default: true
  fabric_manager:
    description:
      - What the GPU fabric needs, installed in the driver's own transaction. V(auto) reads the PCI bus the way
        M(mlinfra.mlhost.host_facts) does (its C(nvidia.fabric_service)) and installs what it says. NVSwitches on the
        bus (HGX A100, H100, H200) need fabric manager. Blackwell SXM GPUs (HGX B200, B300) need fabric manager and
        NVLSM. Grace Blackwell superchips need IMEX. Anything else (PCIe cards, no GPU) needs nothing.
      - V(true) installs fabric manager even where the bus shows no NVSwitch (or what the bus asks for, where it asks
        for more); V(false) installs none.
      - The packages are NVIDIA's. From its repository they are C(nvidia-fabricmanager) and C(libnvidia-nscq) (with
        C(-<branch>) in their names before R580; C(nvidia-fabric-manager) on RPM distributions), C(nvlsm), and
        C(nvidia-imex). Fabric manager and IMEX are installed at exactly the driver's version. They are held with the
        driver, and a driver upgrade upgrades them in the same transaction. Added to an installed driver, they are
        installed at its version, not at the repository's newest. A transaction that would bring another version is
        refused before anything changes.
      - Their unit (C(nvidia-fabricmanager.service), or C(nvidia-imex.service)) is enabled, and started when the
        installed driver is the loaded one (a reboot starts it otherwise).
      - Debian's own archive carries no fabric manager, so O(source=distro) on Debian refuses a node that needs it and
        names O(source=nvidia_repo).
      - V(auto), V(true) or V(false) (a YAML boolean is taken too).
    type: raw
    default: auto
    version_added: 1.0.0
  dcgm:
    description:
      - Install NVIDIA DCGM 4 for the driver's CUDA major in the driver's transaction, held with it, and enable
        C(nvidia-dcgm.service). The packages are C(datacenter-gpu-manager-4-core) and
        C(datacenter-gpu-manager-4-cuda12) (branches 525 to 575) or C(datacenter-gpu-manager-4-cuda13) (580 and later;
        the newest branch when O(branch) is empty). They come from NVIDIA's CUDA repository, so O(source=distro) on
        Debian is refused.
      - M(mlinfra.mlhost.stack_check)'s O(mlinfra.mlhost.stack_check#module:dcgm_diag_level) runs C(dcgmi diag) with it.
    type: bool
    default: false
    version_added: 1.0.0
  state:
    description: V(present) installs; V(absent) unholds and removes the driver's packages and the blacklist file.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.nvidia_repo
  - mlinfra.mlhost.packages
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
    details: >-
      Check mode is the plan the real run carries out. Without package lists on the host (or when the sources change),
      the source is asked after the refresh, and a warning says so.
  diff_mode:
    support: full
    details: The diff shows each source, keyring, modprobe and DKMS file written or removed, the kernel holds record, and
      the kernel package holds before and after.
notes:
  - Needs root (or become).
  - Rebooting is the role's decision (M(mlinfra.mlhost.nvidia_driver) role, C(mlhost_reboot)), never the module's.
  - Driver branches past NVIDIA's end of life get a warning (see the compatibility documentation).
seealso:
  - module: mlinfra.mlhost.cuda_toolkit
  - module: mlinfra.mlhost.host_facts
  - name: nvidia_driver documentation
    description: Sources, package names per distribution, and what the tests install.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/nvidia_driver.md
"""

EXAMPLES = r"""
- name: Debian 12's own driver (branch 535), held, nouveau blacklisted, persistence on
  mlinfra.mlhost.nvidia_driver:
    branch: "535"

- name: Branch 590 from NVIDIA's own repository (its published key, checked by fingerprint; pinned with nvidia-driver-pinning-590)
  mlinfra.mlhost.nvidia_driver:
    branch: "590"
    source: nvidia_repo

- name: Branch 580 with the open modules from a mirror of NVIDIA's repository that signs with its own key
  mlinfra.mlhost.nvidia_driver:
    branch: "580"
    flavor: open
    source: nvidia_repo
    repo_url: https://mirror.example.internal/nvidia/cuda/repos/debian12/x86_64/
    repo_key: https://mirror.example.internal/nvidia/mirror-key.asc
    repo_key_fingerprints: ["0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567"]

- name: Secure Boot host - DKMS signs with an enrolled key pair of our own; the running kernel is held too
  mlinfra.mlhost.nvidia_driver:
    branch: "535"
    mok_key: /root/mok/mok.key
    mok_certificate: /root/mok/mok.der
    hold_kernel: true

- name: Ubuntu with Secure Boot - Canonical's signed precompiled modules, no DKMS and no MOK
  mlinfra.mlhost.nvidia_driver:
    branch: "580"
    kernel_modules: precompiled

- name: Remove the driver
  mlinfra.mlhost.nvidia_driver:
    state: absent
"""

RETURN = r"""
packages:
  description: The installed packages that make up the driver (those of its version and those asked for).
  type: list
  elements: str
  returned: success
  sample: [nvidia-driver, nvidia-kernel-dkms, nvidia-smi, libcuda1, nvidia-persistenced]
installed_version:
  description: The driver version installed after the run (in check mode, as it would be when known).
  type: str
  returned: success
  sample: 535.309.01
loaded_version:
  description: The driver version the running kernel has loaded (C(/proc/driver/nvidia/version)), or null.
  type: str
  returned: success
  sample: null
reboot_required:
  description: Whether a reboot is needed for the installed driver to run.
  type: bool
  returned: success
  sample: true
reboot_reasons:
  description: Why, in words.
  type: list
  elements: str
  returned: success
  sample: ["nvidia driver 535.309.01 installed, not loaded"]
actions:
  description: The plan's steps, in order; the same in check mode and in the run that carries them out.
  type: list
  elements: str
  returned: success
  sample: ["write the package sources: write /etc/apt/sources.list.d/mlhost-debian-nonfree.sources",
           "install nvidia-driver nvidia-kernel-dkms", "hold nvidia-driver nvidia-kernel-dkms"]
source:
  description: The source used (V(distro) or V(nvidia_repo)).
  type: str
  returned: success
  sample: distro
source_reason:
  description: Why that source was used (with O(source=auto), which source it chose and why).
  type: str
  returned: success
  sample: Debian 12 carries branch 535, the branch asked
kernel_holds:
  description:
    - What O(hold_kernel) holds and the collection's record of it (in check mode, as it would be).
    - C(wanted) what the option holds on this host; C(held) the holds the collection made, recorded after the run;
      C(hold) and C(release) what this run holds and releases; C(admin_held) those wanted that were already held by
      someone else, left alone.
  type: dict
  returned: success
  sample: {wanted: [linux-headers-6.1.0-40-amd64, linux-image-6.1.0-40-amd64, linux-image-amd64], held: [linux-image-6.1.0-40-amd64, linux-image-amd64],
           hold: [linux-image-6.1.0-40-amd64, linux-image-amd64], release: [], admin_held: [linux-headers-6.1.0-40-amd64]}
kernel_modules:
  description: Where the kernel modules come from on this host, V(dkms) or V(precompiled) (Ubuntu's signed ones).
  type: str
  returned: success
  sample: dkms
kernel_modules_reason:
  description: Why, in words (empty when nothing was to decide, as with O(state=absent)).
  type: str
  returned: success
  sample: "DKMS: Secure Boot is disabled"
secure_boot:
  description: Secure Boot as read when an install was planned (C(enabled), C(disabled), C(unknown); C(unknown) when nothing was installed).
  type: str
  returned: success
  sample: disabled
repo_key_fingerprints:
  description:
    - The fingerprints of the keys in the repository key file the package source trusts, after they were checked
      (NVIDIA's repository); empty for the distribution's own sources.
  type: list
  elements: str
  returned: success
  sample: [EB693B3035CD5710E231E123A4B469963BF863CC]
flavor:
  description: The flavor chosen.
  type: str
  returned: success
  sample: proprietary
branch:
  description: The branch asked for (null when none was).
  type: str
  returned: success
  sample: "535"
planned_branch:
  description: The branch the host gets (asked, installed, or the distribution's), for planning CUDA before the driver is installed.
  type: str
  returned: success
  sample: "535"
branch_status:
  description: NVIDIA's designation and end of life of the branch, when known.
  type: dict
  returned: when the branch is known
  sample: {designation: long-term support branch, eol: 2026-06, eol_passed: true}
fabric_service:
  description: What the fabric needs and gets here (V(none), V(fabric_manager), V(fabric_manager_nvlsm) or V(imex)).
  type: str
  returned: success
  sample: fabric_manager
  version_added: 1.0.0
addon_packages:
  description: The fabric manager, NVLSM, IMEX and DCGM packages installed with the driver.
  type: list
  elements: str
  returned: success
  sample: [nvidia-fabricmanager, libnvidia-nscq, datacenter-gpu-manager-4-core, datacenter-gpu-manager-4-cuda13]
  version_added: 1.0.0
services:
  description: The units enabled for them.
  type: list
  elements: str
  returned: success
  sample: [nvidia-fabricmanager.service, nvidia-dcgm.service]
  version_added: 1.0.0
pkg_mgr:
  description: The package manager used.
  type: str
  returned: success
  sample: apt
commands:
  description: The commands this run ran, in order.
  type: list
  elements: str
  returned: success
  sample: ["/usr/bin/dpkg-query -W -f ... nvidia-* libnvidia-*"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_driver import Driver
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_repo import PACKAGE_OPTIONS, REPO_OPTIONS

ARGUMENT_SPEC = {
    "branch": {"type": "str", "default": ""},
    "version": {"type": "str", "default": ""},
    "flavor": {"type": "str", "choices": ["auto", "open", "proprietary"], "default": "auto"},
    "source": {"type": "str", "choices": ["auto", "distro", "nvidia_repo"], "default": "auto"},
    **REPO_OPTIONS,
    "hold": {"type": "bool", "default": True},
    "blacklist_nouveau": {"type": "bool", "default": True},
    "persistence": {"type": "bool", "default": True},
    "exclude_from_automatic_upgrades": {"type": "bool", "default": True},
    "mok_certificate": {"type": "str", "default": ""},
    "mok_key": {"type": "str", "default": "", "no_log": False},  # a path; the key itself is never read or shown
    "hold_kernel": {"type": "bool", "default": False},
    "kernel_modules": {"type": "str", "choices": ["auto", "dkms", "precompiled"], "default": "auto"},
    "kernel_headers": {"type": "bool", "default": True},
    "server_packages": {"type": "bool", "default": True},
    "fabric_manager": {"type": "raw", "default": "auto"},
    "dcgm": {"type": "bool", "default": False},
    **PACKAGE_OPTIONS,
}


def main() -> None:
    run_module(ARGUMENT_SPEC, Driver)


if __name__ == "__main__":
    main()
