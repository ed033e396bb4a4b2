#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_reload
short_description: Load a newly installed NVIDIA driver without a reboot when nothing holds the old one
version_added: 1.0.0
requirements:
  - C(modprobe) and C(modinfo) (kmod), and C(systemctl) for the GPU client units, on the managed host
description:
  - When the installed NVIDIA driver (O(installed_version), else the version of the module file C(modinfo -F version
    nvidia) finds for the running kernel) differs from the loaded one (C(/proc/driver/nvidia/version), else
    C(/sys/module/nvidia/version)), plans a reload of the kernel modules.
  - "Finds what holds the driver: every process with an C(/dev/nvidia*) file open or mapped (C(/proc/<pid>/fd),
    C(/proc/<pid>/maps)), with its systemd unit (C(/proc/<pid>/cgroup)), and each module's reference count
    (C(/sys/module/<name>/refcnt)) against the modules that depend on it (C(/sys/module/<name>/holders)) and the
    open files found."
  - The GPU clients named in O(clients) that are active are stopped for the reload and started again after it. Any
    other process holding the GPU is never killed; references no process explains (a display server on
    C(/dev/dri), another kernel module), nouveau driving the GPU, or a module file for the running kernel that is not
    the installed version make the result C(reboot_required=true) with the reasons, and nothing is changed. The role
    (M(mlinfra.mlhost.nvidia_driver) role, C(mlhost_reboot)) decides about the reboot.
  - The reload stops the clients, unloads C(nvidia_peermem), C(nvidia_uvm), C(nvidia_drm), C(nvidia_modeset) and
    C(nvidia) (those loaded, C(modprobe -r)), loads C(nvidia) and the modules that were loaded before, starts the
    clients again and reads the loaded version back. Another version than the installed one fails the module with
    the reason (the clients are started again first).
  - When an unload fails after the plan (something opened the GPU in between), the modules are loaded back, the
    clients are started again and the result says C(reboot_required=true) with modprobe's message.
  - With no NVIDIA GPU on the PCI bus, or the loaded driver already the installed one, nothing is done.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  installed_version:
    description:
      - The driver version that must end up loaded (the M(mlinfra.mlhost.nvidia_driver) result's C(installed_version)).
      - Empty takes the version of the module file C(modinfo) finds for the running kernel. When both are known and
        differ, the reload is not done (a reboot into a kernel the driver was built for is needed).
    type: str
    default: ""
  clients:
    description:
      - The systemd units of GPU clients that may be stopped for the reload and started again after it; only those
        that are active are touched.
      - The default is NVIDIA's persistence daemon, DCGM (both unit names its packages use) and the fabric manager.
    type: list
    elements: str
    default: [nvidia-persistenced.service, nvidia-dcgm.service, dcgm.service, nvidia-fabricmanager.service]
  timeout:
    description: Seconds each command (C(systemctl), C(modprobe), C(modinfo)) may take.
    type: int
    default: 120
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
attributes:
  check_mode:
    support: full
    details: Check mode is the plan (the holders found, the units that would be stopped); nothing is stopped or unloaded.
  diff_mode:
    support: full
    details: The diff shows the loaded driver version before and after.
notes:
  - Needs root (or become).
  - Containers cannot load kernel modules; the M(mlinfra.mlhost.nvidia_driver) role does not run this module in one.
seealso:
  - module: mlinfra.mlhost.nvidia_driver
  - module: mlinfra.mlhost.host_facts
  - name: Rolling driver upgrades
    description: Draining, reloading and rebooting a fleet batch by batch.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/rolling-upgrades.md
"""

EXAMPLES = r"""
- name: Install the new driver
  mlinfra.mlhost.nvidia_driver:
    branch: "580"
  register: driver

- name: Load it without a reboot where nothing holds the GPU
  mlinfra.mlhost.nvidia_reload:
    installed_version: "{{ driver.installed_version }}"
  register: reload
  when: driver.installed_version != driver.loaded_version

- name: Reboot where the reload was not possible
  ansible.builtin.reboot:
  when: reload.reboot_required | default(false)

- name: Also stop a site's own GPU exporter for the reload
  mlinfra.mlhost.nvidia_reload:
    clients: [nvidia-persistenced.service, nvidia-dcgm.service, gpu-exporter.service]
"""

RETURN = r"""
state:
  description:
    - V(current) (the installed driver is loaded), V(reload) (check mode - a reload would be done), V(reloaded),
      V(reboot_required) (see RV(reasons)), V(no_gpu) (no NVIDIA GPU on the PCI bus) or V(no_driver) (no installed
      driver found).
  returned: always
  type: str
  sample: reloaded
reloaded:
  description: Whether the modules were unloaded and the installed driver loaded.
  returned: always
  type: bool
  sample: true
reboot_required:
  description: Whether only a reboot can load the installed driver (RV(reasons) says why).
  returned: always
  type: bool
  sample: false
reasons:
  description: Why the reload cannot be done, one sentence each (holders named by pid and command).
  returned: always
  type: list
  elements: str
  sample: ["pid 4711 (python3, slurmstepd.scope) has /dev/nvidia0, /dev/nvidiactl open; it is not stopped by this module"]
installed_version:
  description: The driver version that must be loaded; V(null) when none was found.
  returned: always
  type: str
  sample: "550.163.01"
module_file_version:
  description: The version of the nvidia module file C(modinfo) finds for the running kernel; V(null) when there is none.
  returned: always
  type: str
  sample: "550.163.01"
previous_version:
  description: The driver version loaded before the run; V(null) when none was.
  returned: always
  type: str
  sample: "535.261.03"
loaded_version:
  description: The driver version loaded after the run (in check mode, the one loaded now).
  returned: always
  type: str
  sample: "550.163.01"
holders:
  description: The processes holding the GPU that are not one of the active O(clients) (pid, comm, devices, unit).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4711, comm: python3, devices: [/dev/nvidia0, /dev/nvidiactl], unit: null}]
stopped_units:
  description: The client units stopped for the reload (and started again after it).
  returned: always
  type: list
  elements: str
  sample: [nvidia-persistenced.service]
unloaded:
  description: The modules unloaded, in order.
  returned: always
  type: list
  elements: str
  sample: [nvidia_uvm, nvidia_drm, nvidia_modeset, nvidia]
loaded:
  description: The modules loaded again, in order.
  returned: always
  type: list
  elements: str
  sample: [nvidia, nvidia_uvm, nvidia_drm, nvidia_modeset]
commands:
  description: The commands run.
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/systemctl is-active nvidia-persistenced.service"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_reload import CLIENT_UNITS, NvidiaReloadWorker

ARGUMENT_SPEC = {
    "installed_version": {"type": "str", "default": ""},
    "clients": {"type": "list", "elements": "str", "default": list(CLIENT_UNITS)},
    "timeout": {"type": "int", "default": 120},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, NvidiaReloadWorker)


if __name__ == "__main__":
    main()
