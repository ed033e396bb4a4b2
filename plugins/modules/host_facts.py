#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_facts
short_description: Read what an ML host is (distro, hardware, NVIDIA driver, CUDA, Pythons, conda)
version_added: 0.1.0
requirements:
  - nothing beyond Python; C(nvidia-smi) (the NVIDIA driver's) adds GPU data when it is present, C(rpm) the installed
    driver on RPM distributions
description:
  - Reads the host (or a root tree given as O(sysroot)) and returns C(ansible_facts.mlhost).
  - Distribution from C(/etc/os-release) and its package manager; architecture, kernel, container
    and virtualization type; Secure Boot state from the EFI variables (or C(mokutil)).
  - NVIDIA GPUs from C(/sys/bus/pci/devices) (vendor C(0x10de), display and 3D classes), named from
    a table of data-center and workstation GPUs, then from the host's C(pci.ids).
  - The NVIDIA kernel module and nouveau from C(/proc/modules), the loaded driver from
    C(/proc/driver/nvidia/version), the installed driver from the package database (dpkg status
    file, or C(rpm -q)), C(nvidia-smi) data when it is present and answers, and the highest CUDA
    version the driver supports.
  - CUDA toolkits (C(/usr/local/cuda-*) and the distribution's C(nvidia-cuda-toolkit)), Python
    interpreters on C(PATH) and conda installations in common prefixes.
  - Whether a reboot is required, and why (driver installed but not loaded, installed and loaded
    versions differ, nouveau loaded beside an installed NVIDIA driver, C(/run/reboot-required)).
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
        and C(nvidia.smi_status) says why.
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

- name: Reboot only where the driver needs it
  ansible.builtin.reboot:
  when: ansible_facts.mlhost.reboot_required
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
          description: NVIDIA GPUs on the PCI bus.
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
