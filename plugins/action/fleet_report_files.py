# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Action plugin of mlinfra.mlhost.fleet_report_files: the fleet report built and written on the controller.

The report is made from hostvars and written into a directory of the controller in one step, in the
controller's own process: no module is sent anywhere (the three files cost no module runs).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _fleet_report
from ansible_collections.mlinfra.mlhost.plugins.module_utils._files import differs, read_bytes, write_if_changed

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        dest = args["dest"]
        if not os.path.isabs(dest):
            raise AnsibleActionFail(f"fleet_report_files: dest must be an absolute directory on the controller, not {dest!r}.")
        if os.path.exists(dest) and not os.path.isdir(dest):
            raise AnsibleActionFail(f"fleet_report_files: dest {dest} exists and is not a directory; name a directory.")
        templates = {}
        for kind in ("md", "html"):
            name = f"fleet-report.{kind}.j2"
            try:  # a role's or the playbook's templates/ first, as ansible.builtin.template looks
                path = self._find_needle("templates", name)
            except AnsibleError:  # then the ml_host role's own, shipped beside this plugin
                path = os.path.join(COLLECTION_ROOT, "roles", "ml_host", "templates", name)
            text = read_bytes(path)
            if text is None:
                raise AnsibleActionFail(f"fleet_report_files: the template {name} was not found (looked in {path}).")
            templates[kind] = to_text(text)
        hostvars = task_vars.get("hostvars", {})
        try:
            report = _fleet_report.report(hostvars, args["hosts"])
            files = _fleet_report.render_files(report, templates)
        except (TypeError, ValueError, AttributeError) as exc:
            raise AnsibleActionFail(f"fleet_report_files: {exc}") from exc

        paths = {name: os.path.join(dest, name) for name in files}
        changing = [name for name, text in files.items() if differs(paths[name], text)]
        before = {n: to_text(read_bytes(paths[n]) or b"") for n in changing} if self._task.diff else {}
        if not self._task.check_mode:
            os.makedirs(dest, mode=0o755, exist_ok=True)
            for name in _fleet_report.FILES:
                write_if_changed(paths[name], files[name], 0o644)
        if before:
            result["diff"] = [{"before_header": paths[n], "after_header": paths[n], "before": before[n], "after": files[n]}
                              for n in changing]
        lines = _fleet_report.glance(report, dest)
        if self._task.check_mode:
            lines[0] = f"Fleet report: would write {dest}/fleet-report.{{json,md,html}} (check mode writes nothing)"
        result.update(
            changed=bool(changing),
            dest=dest,
            files=[paths[n] for n in _fleet_report.FILES],
            changed_files=[paths[n] for n in changing],
            summary=report["summary"],
            msg=lines,
        )
        return result
