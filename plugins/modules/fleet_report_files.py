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
version_added: 1.0.0
requirements:
  - nothing on any host; on the controller, what ansible-core needs (Jinja2 renders the pages)
description:
  - Builds the fleet report from C(hostvars) as the filter P(mlinfra.mlhost.fleet_report#filter) does, one row per
    host of O(hosts) (failed and unreached hosts included), and writes C(fleet-report.json), C(fleet-report.md) and
    C(fleet-report.html) into O(dest) on the controller.
  - "The report is the fleet, not the last run: each host's row is kept in C(<dest>/hosts/<host>.json) (the name
    percent-encoded) and the report is the merge of every host's file. A run that covers some hosts (C(--limit))
    rewrites only their rows; a run that skips a phase (C(--tags)) keeps the row's earlier values of what it did not
    read (the stack check, or the whole host's facts when the host was not reached) and says since when
    (C(stale), shown as \"stack check from <time>\")."
  - "Each row says when it was last seen and by which kind of run (C(last_seen), C(run) - C(full), C(tags python),
    C(limit gpu*), C(skip-tags ...), C(check)). A row is rewritten only when what it says about the host changes
    (C(last_seen), C(run), C(stale), C(changed) and C(phase_times) are not compared): C(last_seen) is the time of the
    run that last found the host different, and an unchanged rerun rewrites nothing and reports C(changed=false)."
  - A host no longer in the inventory keeps its row, marked C(inventory=false), until O(prune) removes it (or its
    file is deleted by hand). Files in C(<dest>/hosts/) that are not this plugin's host files are left alone and
    not read (a warning names them).
  - An action plugin - it runs in the controller's own process, whatever the task's connection, and sends no module
    to any host, so the report costs no module runs. The Markdown and HTML pages are the templates
    C(fleet-report.md.j2) and C(fleet-report.html.j2), looked up the way M(ansible.builtin.template) looks (the
    running role's or the playbook's C(templates/)), else the C(ml_host) role's own. The HTML page is one
    self-contained file (inline style and script, nothing fetched) with the summary counts, a sortable table and a
    filter, which the URL's fragment can set (C(#status=failed), C(#q=h100), C(#sort=-host)).
  - A file is rewritten only when its content changes (atomically, mode C(0644)); O(dest) and C(<dest>/hosts) are made
    (C(0755)) when missing.
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
  prune:
    description:
      - Remove the kept rows (C(<dest>/hosts/<host>.json)) of hosts that are neither in O(hosts) nor in the inventory
        (C(groups['all'])).
    type: bool
    default: false
    version_added: 1.0.0
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
  description: The files whose content changed, were written or removed (or, in check mode, would be).
  returned: always
  type: list
  elements: str
run:
  description: The kind of this run, as the rows it writes say it (C(full), C(tags python), C(limit gpu*), C(check)).
  returned: always
  type: str
  version_added: 1.0.0
updated_hosts:
  description: The hosts whose row this run rewrote (or, in check mode, would rewrite).
  returned: always
  type: list
  elements: str
  version_added: 1.0.0
pruned_hosts:
  description: The hosts whose kept row O(prune) removed (or would remove).
  returned: always
  type: list
  elements: str
  version_added: 1.0.0
summary:
  description:
    - The report's summary - hosts (a count), ok (a count), failed (hosts not ok), unreachable, reboot_pending, drained,
      gpu_hosts, stale (hosts with parts kept from an earlier run), not_in_inventory (host lists), gpus (a count).
  returned: always
  type: dict
msg:
  description: Where the report is, the summary and one line per host (the run's closing lines).
  returned: always
  type: list
  elements: str
"""
