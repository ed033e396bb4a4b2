#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_facts
short_description: Read what an ML host is (distro, hardware, NVIDIA driver, CUDA, Pythons, conda)
version_added: 1.0.0
requirements:
  - nothing beyond Python; C(nvidia-smi) (the NVIDIA driver's) adds GPU data when it is present, C(rpm) the installed
    driver on RPM distributions
description:
  - Reads the host (or a root tree given as O(sysroot)) and returns C(ansible_facts.mlhost).
  - Distribution from C(/etc/os-release) and its package manager; architecture, kernel, container
    and virtualization type; Secure Boot state from the EFI variables (or C(mokutil)).
  - NVIDIA GPUs from C(/sys/bus/pci/devices) (vendor C(0x10de), display and 3D classes), named from
    a table of data-center and workstation GPUs, then from the host's C(pci.ids).
  - Each GPU's form factor (V(pcie), V(sxm), V(superchip)) and compute capability from that table, the compute
    capability from C(nvidia-smi --query-gpu=compute_cap) instead when the driver answers.
  - The GPU fabric (C(nvidia.platform), C(nvidia.nvswitch_count), C(nvidia.fabric_service)), from PCI sysfs alone. NVSwitches
    are vendor C(0x10de) functions of class C(0x0680) (bridge, other); 2nd generation (HGX A100, NVLink 3) and 3rd
    generation (HGX H100/H200, NVLink 4) ids are named, any other is counted with an unknown generation. 4th-generation
    NVSwitches (HGX B100/B200/B300, NVLink 5) are no NVIDIA function on the host; their management ports are ConnectX
    functions whose VPD carries C(SW_MNG) (C(nvidia.nvlink5_management_ports); the VPD is readable by root only).
  - "The service the fabric needs (C(nvidia.fabric_service)), by these rules, in order: Grace Blackwell superchips
    (GB200/GB300, NVL72 racks, no NVSwitch on the host's bus) need V(imex); Blackwell SXM GPUs (HGX B100/B200/B300) or an
    NVLink 5 management port need V(fabric_manager_nvlsm) (Fabric Manager with the NVLink Subnet Manager); NVSwitches on
    the PCI bus (HGX A100/H100/H200, or a shared-NVSwitch service VM without GPUs) need V(fabric_manager); anything else
    (PCIe cards, GH200 or SXM boards without NVSwitch, no GPU) needs V(none). See docs/gpu-fabric.md."
  - The NVIDIA kernel module and nouveau from C(/proc/modules), the loaded driver from
    C(/proc/driver/nvidia/version), the installed driver from the package database (dpkg status
    file, or C(rpm -q)), C(nvidia-smi) data when it is present and answers, and the highest CUDA
    version the driver supports.
  - CUDA toolkits (C(/usr/local/cuda-*) and the distribution's C(nvidia-cuda-toolkit)), Python
    interpreters on C(PATH) and conda installations in common prefixes.
  - The NVIDIA kernel module built by DKMS, per installed kernel (C(nvidia.dkms)), on the live system from
    C(dkms status) (the 3.x lines, C(module/version, kernel, arch), and the 2.x lines, C(module, version, kernel,
    arch), each followed by the state), for a O(sysroot) from C(/var/lib/dkms) and
    C(/lib/modules) without running anything; the installed kernels from C(/lib/modules) and C(/boot/vmlinuz-*); the
    default boot kernel from C(grubby) (RHEL family, live system), GRUB's C(saved_entry) or C(GRUB_DEFAULT), else
    the newest installed kernel (a heuristic; GRUB boots its first entry, the newest kernel, unless told otherwise).
  - Whether a reboot is required, and why (driver installed but not loaded, installed and loaded
    versions differ, nouveau loaded beside an installed NVIDIA driver, C(/run/reboot-required)).
  - Whether a reboot would bring the host up without its driver (C(reboot_blockers)), when the default boot kernel
    lacks the installed driver's DKMS-built module. This is a reason to hold a reboot back, never one to reboot;
    it does not change C(reboot_required).
  - Never fails because a program or file is missing; what cannot be known is V(null) or V(unknown).
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  sysroot:
    description:
      - Read the system below this directory instead of the running one, for example an image being
        built or a chroot.
      - When it is not V(/), no command that talks to the running system is run (no C(nvidia-smi), no
        interpreter probes, no C(mokutil)); RPM databases are read with C(rpm --root).
    type: path
    default: /
  smi_timeout:
    description:
      - Seconds after which a hanging C(nvidia-smi) (a wedged GPU) is killed; its data is then V([])
        and C(nvidia.smi_status) says why. C(dkms status) and C(grubby) run under the same limit.
    type: int
    default: 30
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
notes:
  - Runs on the host without root, but some files (for example C(/proc/1/environ)) are only readable
    by root; the facts are then less complete, never wrong.
seealso:
  - name: Design of ansible_facts.mlhost
    description: The fact layout and how each value is read.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/host_facts.md
"""

EXAMPLES = r"""
- name: Read the host
  mlinfra.mlhost.host_facts:

- name: Show the GPUs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mlhost.gpus | map(attribute='name') | list }}"

- name: Read an image tree being built on a CPU builder
  mlinfra.mlhost.host_facts:
    sysroot: /srv/images/gpu-node

- name: Say what the GPU fabric needs (a fact only; nothing is installed)
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.mlhost.nvidia.platform }} node, {{ ansible_facts.mlhost.nvidia.nvswitch_count }} NVSwitches,
      needs {{ ansible_facts.mlhost.nvidia.fabric_service }}; lowest compute capability
      {{ ansible_facts.mlhost.nvidia.min_compute_capability }}

- name: Reboot only where the driver needs it, and not into a kernel without it
  ansible.builtin.reboot:
  when: ansible_facts.mlhost.reboot_required and not ansible_facts.mlhost.reboot_blockers
"""

RETURN = r"""
ansible_facts:
  description: Facts about the ML host.
  returned: always
  type: dict
  contains:
    mlhost:
      description: Everything this module reads; see the keys below.
      returned: always
      type: dict
      contains:
        sysroot:
          description: The root that was read.
          type: str
          returned: always
          sample: /
        distro:
          description: The distribution, from os-release.
          type: dict
          returned: always
          sample: {id: debian, name: "Debian GNU/Linux 12 (bookworm)", version: "12", major: "12",
                   codename: bookworm, family: debian, like: []}
        pkg_mgr:
          description: The package manager, V(apt), V(dnf) or V(yum); V(null) when unknown.
          type: str
          returned: always
          sample: apt
        arch:
          description: Machine architecture as C(uname -m) prints it.
          type: str
          returned: always
          sample: x86_64
        kernel:
          description: The running kernel's release; V(null) for a sysroot with no C(/proc).
          type: str
          returned: always
          sample: 6.1.0-27-amd64
        container:
          description: The container type (V(docker), V(podman), V(lxc), V(systemd-nspawn), V(kubernetes), V(wsl)), V(null) when not in one.
          type: str
          returned: always
          sample: docker
        virtualization:
          description: The hypervisor named by DMI (V(kvm), V(vmware), V(aws), V(gce), V(hyperv), ...), V(null) on bare metal or when unknown.
          type: str
          returned: always
          sample: kvm
        secure_boot:
          description: V(enabled), V(disabled) or V(unknown).
          type: str
          returned: always
          sample: disabled
        gpus:
          description:
            - NVIDIA GPUs on the PCI bus.
            - C(architecture), C(form_factor) (V(pcie), V(sxm) or V(superchip)) and C(compute_capability) come from the
              collection's table of GPU ids; each is V(null) for an id the table does not know (or, for the form
              factor, whose name does not say it).
            - C(compute_capability) (V(9.0)) is C(nvidia-smi)'s C(compute_cap) when the driver answers with one
              (C(compute_capability_source) V(nvidia-smi)), else the table's (V(table)), else V(null); C(form_factor),
              C(compute_capability) and C(compute_capability_source) were added in 1.0.0.
          type: list
          elements: dict
          returned: always
          sample:
            - pci: "0000:17:00.0"
              vendor_id: 10de
              device_id: "2330"
              subsystem_id: "16c1"
              name: NVIDIA H100 SXM5 80GB
              architecture: hopper
              kernel_driver: nvidia
              numa_node: 0
              form_factor: sxm
              compute_capability: "9.0"
              compute_capability_source: nvidia-smi
        nvidia:
          description:
            - The NVIDIA driver's state. C(present) is true when a GPU is on the bus; C(module_loaded) and
              C(nouveau_loaded) come from C(/proc/modules); C(loaded_version) and C(loaded_flavor) (V(open) or
              V(proprietary)) from C(/proc/driver/nvidia/version); C(installed_version) and C(packages) from
              the package database (C(package_source) V(dpkg), V(rpm) or V(unavailable)); C(smi) from
              C(nvidia-smi) (C(smi_status) V(ok), V(not_found), V(skipped:...) or V(failed:...));
              C(cuda_driver_api) is the highest CUDA version the driver supports, from C(nvidia-smi) or, when
              it cannot answer, from NVIDIA's toolkit/driver table (C(cuda_driver_api_source)).
          type: dict
          returned: always
          sample:
            present: true
            gpu_count: 1
            nouveau_loaded: false
            module_loaded: true
            modules: [nvidia, nvidia_modeset, nvidia_uvm]
            loaded_version: 580.95.05
            loaded_flavor: open
            installed_version: 580.95.05
            packages: [{name: nvidia-driver, version: 580.95.05-1}]
            package_source: dpkg
            smi: [{index: 0, name: NVIDIA H100 80GB HBM3, uuid: GPU-7a1f..., pci: "0000:17:00.0",
                   memory_total_mib: 81559, driver_version: 580.95.05, persistence_mode: true, compute_cap: "9.0"}]
            smi_status: ok
            cuda_driver_api: "13.0"
            cuda_driver_api_source: nvidia-smi
            dkms: {status: [{module: nvidia, version: 580.95.05, kernel: 6.1.0-28-amd64, arch: x86_64, state: installed,
                             detail: null}],
                   source: dkms, version: 580.95.05, kernels: [6.1.0-27-amd64, 6.1.0-28-amd64],
                   running_kernel: 6.1.0-27-amd64, default_kernel: 6.1.0-28-amd64, default_kernel_source: newest,
                   missing: [6.1.0-27-amd64], ok: false}
            min_compute_capability: "9.0"
            nvswitch_count: 4
            nvswitches: [{pci: "0000:05:00.0", device_id: 22a3, name: "NVIDIA NVSwitch (3rd generation, LS10)", generation: 3,
                          nvlink: 4, kernel_driver: nvidia}]
            nvlink5_management_ports: []
            platform: sxm
            nvlink_generation: 4
            fabric_service: fabric_manager
          contains:
            min_compute_capability:
              description: The lowest C(compute_capability) among the GPUs (see C(gpus)); V(null) when none is known.
              type: str
              returned: always
              version_added: 1.0.0
              sample: "8.6"
            nvswitch_count:
              description:
                - How many NVSwitches are on the PCI bus (C(nvswitches)). V(0) on HGX B100/B200/B300, whose 4th-generation
                  NVSwitches are no NVIDIA PCI function on the host (see C(nvlink5_management_ports)), and on GB200/GB300
                  compute trays, whose switches sit in the rack's switch trays.
              type: int
              returned: always
              version_added: 1.0.0
              sample: 4
            nvswitches:
              description:
                - One entry per NVSwitch on the PCI bus (vendor C(0x10de), class C(0x0680xx)), in PCI order, with C(pci),
                  C(device_id), C(name), C(generation) (V(2) LR10, V(3) LS10) and C(nvlink) (V(3), V(4)), both V(null) for
                  an id the collection does not know (it is counted all the same), and C(kernel_driver).
                - The PCI-PCI and non-transparent bridge functions of a 3rd-generation switch (C(22a8)-C(22af)) are not
                  switches of their own and are left out. A C(device_id) that is not four hex digits is V(null).
              type: list
              elements: dict
              returned: always
              version_added: 1.0.0
              sample: [{pci: "0000:05:00.0", device_id: 22a3, name: "NVIDIA NVSwitch (3rd generation, LS10)", generation: 3,
                        nvlink: 4, kernel_driver: nvidia}]
            nvlink5_management_ports:
              description:
                - ConnectX functions (vendor C(0x15b3)) whose PCI VPD carries C(SW_MNG) - the management ports of
                  4th-generation NVSwitches, which the NVLink Subnet Manager drives - with C(pci), C(device_id),
                  C(infiniband) (the C(mlx5_N) device, V(null) without the mlx5 driver) and C(kernel_driver).
                - Read only where there is an NVIDIA GPU on the bus. The VPD is readable by root only; without it the list
                  is V([]) (C(fabric_service) still follows from Blackwell SXM GPUs).
              type: list
              elements: dict
              returned: always
              version_added: 1.0.0
              sample: [{pci: "0000:8a:00.0", device_id: "1021", infiniband: mlx5_8, kernel_driver: mlx5_core}]
            platform:
              description:
                - The GPUs' form factor - V(superchip) (Grace and the GPU on one module - GH200, GB200), V(sxm) (SXM modules
                  on an HGX/DGX baseboard), V(pcie) (cards) - the most integrated one when GPUs differ; V(none) without an
                  NVIDIA GPU; V(sxm) for GPUs of no known form factor beside NVSwitches, else V(unknown).
              type: str
              returned: always
              version_added: 1.0.0
              sample: sxm
            nvlink_generation:
              description:
                - The NVLink generation the PCI ids say - the NVSwitches' (V(3) LR10, V(4) LS10), V(5) beside an NVLink 5
                  management port, else that of SXM or superchip GPUs (Pascal V(1), Volta V(2), Ampere V(3), Hopper V(4),
                  Blackwell V(5)); V(null) for PCIe cards (bridged pairs are not read) and unknown ids.
              type: int
              returned: always
              version_added: 1.0.0
              sample: 4
            fabric_service:
              description:
                - "What the GPU fabric needs running on this host, by the rules in the description - V(imex) (GB200/GB300),
                  V(fabric_manager_nvlsm) (HGX B100/B200/B300: Fabric Manager and NVLSM), V(fabric_manager) (NVSwitches
                  on the bus: HGX A100/H100/H200) or V(none)."
                - A fact only; host_facts installs and starts nothing.
              type: str
              returned: always
              version_added: 1.0.0
              sample: fabric_manager
            dkms:
              description:
                - The NVIDIA kernel module built by DKMS, for each installed kernel, so that a kernel update that left the
                  driver behind is seen before a reboot.
                - Only modules whose name starts with C(nvidia) are read (C(nvidia), Debian's C(nvidia-current) and
                  C(nvidia-current-open), C(nvidia-open), C(nvidia-srv), ...); of those, only entries whose version is a
                  driver version (C(535.261.03)) count as the driver, so C(nvidia-fs) 2.x (GPUDirect Storage) is listed
                  but never checked.
              type: dict
              returned: always
              contains:
                status:
                  description:
                    - One entry per line of C(dkms status) about an nvidia* module (or what the file reader finds), with
                      C(module), C(version), C(kernel) and C(arch) (V(null) for an V(added) or V(broken) module),
                      C(state) (V(added), V(built), V(installed), V(installed-weak) or V(broken); another word a future
                      dkms prints is kept as it is) and C(detail), what follows the state (V((original_module exists\)),
                      V((WARNING! Diff between built and installed module!\)), V(from <kernel>) after V(installed-weak)),
                      else V(null).
                    - The file reader (O(sysroot) other than V(/), or C(dkms status) failing without a status line) takes
                      C(/var/lib/dkms/<module>/<version>/) with a C(source) as V(added) (V(broken) when the source is
                      gone), C(<version>/<kernel>/<arch>/module/) as V(built), and a build as V(installed) when its module
                      files are in C(/lib/modules/<kernel>/updates/dkms) (or C(extra), C(updates)) and DKMS's
                      C(kernel-<kernel>-<arch>) link points at it or there is no such link. It does not see
                      V(installed-weak).
                    - At most 1024 entries; lines over 1 KiB, lines with NUL bytes and other lines (warnings, C(Error!))
                      are left out.
                  type: list
                  elements: dict
                  returned: always
                  sample: [{module: nvidia, version: 580.95.05, kernel: 6.1.0-28-amd64, arch: x86_64, state: installed,
                            detail: null}]
                source:
                  description:
                    - "How C(status) was read. V(dkms) (C(dkms status) ran, live system only), V(files) (the file
                      reader), V(not_found) (no C(dkms) program on the live system's C(PATH), or none at
                      C(/usr/sbin/dkms), C(/usr/bin/dkms) or C(/sbin/dkms) in the O(sysroot)), or
                      V(skipped: no NVIDIA GPU or driver) (no GPU on the bus, no driver installed or loaded and no
                      C(/var/lib/dkms/nvidia*); nothing of DKMS is read and no command runs)."
                  type: str
                  returned: always
                  sample: dkms
                version:
                  description:
                    - The driver version checked against the kernels. It is the installed driver's version
                      (C(nvidia.installed_version)) when DKMS has that version; V(null) when DKMS does not (the
                      installed driver's modules come from elsewhere, such as precompiled packages, or the registration
                      is stale), and DKMS's newest driver version when no package says which driver is installed (a
                      C(.run) install).
                  type: str
                  returned: always
                  sample: 580.95.05
                kernels:
                  description:
                    - Installed kernel releases, oldest first (version order), from C(/lib/modules/<release>/) directories
                      with a C(kernel/) directory or a C(modules.dep) (also below C(/usr/lib/modules)), and
                      C(/boot/vmlinuz-<release>) images, rescue images left out.
                    - A modules directory with only C(updates/) (what DKMS leaves of a removed kernel) or only a
                      C(build) link (Debian's linux-headers package ships it) is not a kernel. V([]) in a container
                      without C(/lib/modules).
                  type: list
                  elements: str
                  returned: always
                  sample: [6.1.0-27-amd64, 6.1.0-28-amd64]
                running_kernel:
                  description: The running kernel's release, as C(kernel) above; V(null) for a O(sysroot) with no C(/proc).
                  type: str
                  returned: always
                  sample: 6.1.0-27-amd64
                default_kernel:
                  description:
                    - The installed kernel the boot loader starts when nobody picks one; V(null) when no kernel is
                      installed. C(default_kernel_source) says how it was read.
                  type: str
                  returned: always
                  sample: 6.1.0-28-amd64
                default_kernel_source:
                  description:
                    - V(grubby) (C(grubby --default-kernel), RHEL family and live system only), V(grubenv) (C(GRUB_DEFAULT=saved)
                      in C(/etc/default/grub) or C(/etc/default/grub.d/*.cfg), and the C(saved_entry) of
                      C(/boot/grub/grubenv) or C(/boot/grub2/grubenv) names an installed kernel), V(grub_default)
                      (C(GRUB_DEFAULT) itself names one), or V(newest), a heuristic (the newest installed kernel,
                      which GRUB lists first and boots by default). A one-shot C(grub-reboot) and boot loaders other than
                      GRUB are not read. V(null) when no kernel is installed.
                  type: str
                  returned: always
                  sample: newest
                missing:
                  description:
                    - Installed kernels for which C(version) is not V(installed) (or V(installed-weak)), whether built only,
                      not built, or not even tried. V([]) when C(ok) is V(null).
                  type: list
                  elements: str
                  returned: always
                  sample: [6.1.0-27-amd64]
                ok:
                  description:
                    - V(true) when every installed kernel has C(version) installed, V(false) when one lacks it (see
                      C(missing)), V(null) when there is nothing to check - no DKMS nvidia module of the installed
                      driver registered (precompiled modules, no driver), no C(dkms), or no installed kernel known.
                  type: bool
                  returned: always
                  sample: false
        cuda_toolkits:
          description: CUDA toolkits present, oldest first; C(default) marks the one C(/usr/local/cuda) points at.
          type: list
          elements: dict
          returned: always
          sample:
            - {version: "12.4", full_version: 12.4.131, path: /usr/local/cuda-12.4, nvcc: /usr/local/cuda-12.4/bin/nvcc,
               source: nvidia, default: true}
        pythons:
          description: Python 3 interpreters on C(PATH), one per distinct executable.
          type: list
          elements: dict
          returned: always
          sample: [{path: /usr/bin/python3, version: 3.11.2, externally_managed: true}]
        conda:
          description: Conda installations found in common prefixes, read from C(conda-meta).
          type: list
          elements: dict
          returned: always
          sample: [{prefix: /opt/miniforge3, version: 24.11.3, mamba_version: 1.5.12, envs: [torch]}]
        reboot_required:
          description: Whether the host must reboot for its installed driver (or packages) to take effect.
          type: bool
          returned: always
          sample: true
        reboot_reasons:
          description: Why a reboot is required, one sentence each.
          type: list
          elements: str
          returned: always
          sample: ["nvidia driver 550.163.01 installed, 535.261.03 loaded"]
        reboot_blockers:
          description:
            - Why a reboot now would bring the host up without its NVIDIA driver, one sentence each; V([]) when nothing
              stands in the way.
            - A blocker is there when C(nvidia.dkms.ok) is V(false) and the default boot kernel
              (C(nvidia.dkms.default_kernel)) is among C(nvidia.dkms.missing). Other kernels without the module show in
              C(nvidia.dkms.missing) only.
            - It is a reason to hold a reboot back (or to build the module first, C(dkms autoinstall -k <kernel>)), never
              one to reboot; C(reboot_required) and C(reboot_reasons) do not count it.
          type: list
          elements: str
          returned: always
          sample: ["the nvidia DKMS module 535.261.03 is not installed for kernel 6.1.0-28-amd64 (the default boot kernel):
                    a reboot would come up without the driver"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._host import HostFacts
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module

ARGUMENT_SPEC = {
    "sysroot": {"type": "path", "default": "/"},
    "smi_timeout": {"type": "int", "default": 30},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, HostFacts)


if __name__ == "__main__":
    main()
