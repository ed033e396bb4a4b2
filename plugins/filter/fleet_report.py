# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The fleet report filter: hostvars of the fleet -> rows, table cells and a summary."""

from __future__ import annotations

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
