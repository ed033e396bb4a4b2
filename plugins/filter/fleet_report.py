# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The fleet report filter: hostvars of the fleet -> rows, table cells and a summary."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report
version_added: 1.0.0
short_description: One report row per host from what the ml_host role recorded
description:
  - Reads each host's C(ansible_facts.mlhost), the phase the C(ml_host) role reached (C(mlhost_phase)),
    the failure it recorded (C(mlhost_failure)) and the phases' registered results
    (C(mlhost_python_env_results), C(mlhost_conda_env_results), C(mlhost_nvidia_driver_result),
    C(mlhost_cuda_toolkit_result), C(mlhost_stack_check_result)).
  - A host that failed, or was never reached, still gets a row with its status and the failed step.
  - The result holds no time stamp, so an unchanged fleet gives the same report. It is this run's rows only; the
    action M(mlinfra.mlhost.fleet_report_files) merges them over the rows kept from earlier runs.
positional: _input, hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The host names to report on, for example C(ansible_play_hosts_all) of the provisioning play.
    type: list
    elements: str
    required: true
author:
  - mlinfra.mlhost developers (@mlinfra)
"""

EXAMPLES = r"""
- name: Build the fleet report on the controller
  ansible.builtin.set_fact:
    fleet: "{{ hostvars | mlinfra.mlhost.fleet_report(groups['all']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(rows) (one dict per host - host, status (ok, failed, unreachable, not_run), distro, kernel, arch, gpu,
      gpu_count, gpus (per GPU - index, name, uuid, pci, memory_mib, compute_cap, health), gpu_phase, nvswitch_count and
      fabric_service (host_facts' C(nvidia.nvswitch_count) and C(nvidia.fabric_service), null without facts),
      driver_installed, driver_loaded, driver_state (upgraded, unchanged, reboot_pending, failed) and
      driver_state_reason, drained, cuda_driver_api (the driver's CUDA level), toolkits, cuda, envs (per env - kind,
      path, python, packages, key_packages, torch_cuda, failed), reboot_pending, reboot_reasons, dkms (ok, missing,
      default_kernel), reboot_blockers, checks, gpu_health, failed_step, error (Ansible's own message for an
      unreachable host, masked), changed (the components whose result says changed), phase_times (seconds per phase)).
    - C(columns) and C(table) (the rows as text cells for Markdown or HTML), C(extras) (per row, the fields the pages
      list generically), and C(summary) (hosts, ok, failed, unreachable, reboot_pending, reboot_blocked, drained,
      gpu_hosts, gpus, stale, not_in_inventory).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _fleet_report


def fleet_report(hostvars, hosts):
    if isinstance(hosts, str):
        raise AnsibleFilterError("mlinfra.mlhost.fleet_report: hosts must be a list of host names, not a string")
    try:
        return _fleet_report.report(hostvars, list(hosts))
    except (TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError(f"mlinfra.mlhost.fleet_report: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"fleet_report": fleet_report}
