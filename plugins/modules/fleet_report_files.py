#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the action plugin plugins/action/fleet_report_files.py, which does all the
# work on the controller; this file is never sent to a host.

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report_files
short_description: Write the fleet report (JSON, Markdown, HTML) on the controller in one step
version_added: 0.1.0
requirements:
  - nothing on any host; on the controller, what ansible-core needs (Jinja2 renders the pages)
description:
  - Builds the fleet report from C(hostvars) as the filter P(mlinfra.mlhost.fleet_report#filter) does, one row per
    host of O(hosts) (failed and unreached hosts included), and writes C(fleet-report.json), C(fleet-report.md) and
    C(fleet-report.html) into O(dest) on the controller.
  - An action plugin - it runs in the controller's own process, whatever the task's connection, and sends no module
    to any host, so the report costs no module runs. The Markdown and HTML pages are the templates
    C(fleet-report.md.j2) and C(fleet-report.html.j2), looked up the way M(ansible.builtin.template) looks (the
    running role's or the playbook's C(templates/)), else the C(ml_host) role's own.
  - A file is rewritten only when its content changes (atomically, mode C(0644)); the report holds no time stamp, so
    an unchanged fleet reports C(changed=false). O(dest) is made (C(0755)) when missing.
  - In check mode nothing is written; C(changed) says whether a file would change and C(msg) says "would write".
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  dest:
    description: The directory on the controller, an absolute path.
    type: path
    required: true
  hosts:
    description: The host names to report on, for example the C(ansible_play_hosts_all) of the provisioning play.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
    description: Writes nothing; reports whether a file would change.
  diff_mode:
    support: full
    description: Each file that changes (or would) with its text before and after.
  platform:
    platforms: posix
    description: Runs on the controller only.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Write the fleet report of the provisioning play
  mlinfra.mlhost.fleet_report_files:
    dest: /var/lib/mlhost/report
    hosts: "{{ groups['all'] }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: The directory written.
  returned: always
  type: str
files:
  description: The three files' paths (JSON, Markdown, HTML).
  returned: always
  type: list
  elements: str
changed_files:
  description: The files whose content changed (or, in check mode, would change).
  returned: always
  type: list
  elements: str
summary:
  description: The report's summary - hosts, ok, failed, reboot_pending, gpu_hosts.
  returned: always
  type: dict
msg:
  description: Where the report is, the summary and one line per host (the run's closing lines).
  returned: always
  type: list
  elements: str
"""
