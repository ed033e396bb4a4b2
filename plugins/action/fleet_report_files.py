# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Action plugin of mlinfra.mlhost.fleet_report_files: the fleet report built and written on the controller.

The report is made from hostvars and written into a directory of the controller in one step, in the
controller's own process: no module is sent anywhere (the files cost no module runs). Each host's row is
kept in ``<dest>/hosts/<host>.json``; the report is the merge of every host's file, so a --limit or --tags
run updates only what it saw.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import urllib.parse

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _fleet_report
from ansible_collections.mlinfra.mlhost.plugins.module_utils._files import atomic_write, differs, read_bytes, write_if_changed

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "prune": {"type": "bool", "default": False},
}
GENERATOR = "mlinfra.mlhost.fleet_report_files"
HOSTS_DIR = "hosts"


def host_file(dest: str, host: str) -> str:
    """``<dest>/hosts/<host>.json``, the name percent-encoded (no / or NUL can reach the path)."""
    return os.path.join(dest, HOSTS_DIR, urllib.parse.quote(host, safe="") + ".json")


def host_text(row: dict) -> str:
    return json.dumps({"generator": GENERATOR, "format": 1, "row": row}, indent=2, sort_keys=True) + "\n"


def read_hosts(dest: str) -> tuple[dict, dict, list]:
    """The stored rows (host -> row), their files (host -> path), and warnings for files that are not ours."""
    rows, paths, warnings = {}, {}, []
    for path in sorted(glob.glob(os.path.join(glob.escape(dest), HOSTS_DIR, "*.json"))):
        try:
            data = json.loads(to_text(read_bytes(path) or b""))
            row = data["row"] if data.get("generator") == GENERATOR else None
            host = row["host"] if isinstance(row, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            host = None
        if not isinstance(host, str) or path != host_file(dest, host):
            warnings.append(f"fleet_report_files: {path} is not a host file of the report; left as it is and not read.")
            continue
        rows[host], paths[host] = row, path
    return rows, paths, warnings


def run_kind(task_vars: dict, check_mode: bool) -> str:
    """full, or what narrowed the run: 'tags python', 'limit gpu*', 'skip-tags verify', 'check' (comma-joined)."""
    parts = []
    tags = [str(x) for x in (task_vars.get("ansible_run_tags") or ["all"])]
    if sorted(tags) != ["all"]:
        parts.append("tags " + ",".join(tags))
    skipped = [str(x) for x in (task_vars.get("ansible_skip_tags") or [])]
    if skipped:
        parts.append("skip-tags " + ",".join(skipped))
    limit = task_vars.get("ansible_limit")
    if limit:
        parts.append(f"limit {limit}")
    if check_mode:
        parts.append("check")
    return ", ".join(parts) or "full"


def collection_version() -> str | None:
    for name in ("MANIFEST.json", "galaxy.yml"):
        text = to_text(read_bytes(os.path.join(COLLECTION_ROOT, name)) or b"")
        if name.endswith(".json") and text:
            try:
                return json.loads(text)["collection_info"]["version"]
            except (ValueError, KeyError, TypeError):
                continue
        for line in text.splitlines():
            if line.startswith("version:"):
                return line.split(":", 1)[1].strip().strip("'\"") or None
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        from ansible.release import __version__ as ansible_version

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
        check = bool(self._task.check_mode)
        run = run_kind(task_vars, check)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        stored, stored_paths, warnings = read_hosts(dest)
        inventory = [str(h) for h in (task_vars.get("groups") or {}).get("all", [])] if task_vars.get("groups") else None
        pruned = []
        if args["prune"] and inventory is not None:
            pruned = sorted(h for h in stored if h not in set(inventory) and h not in set(args["hosts"]))
            for host in pruned:
                stored.pop(host)
        try:
            report = _fleet_report.report(hostvars, args["hosts"], stored=stored, now=now, run=run, inventory=inventory)
            about = {"collection": GENERATOR.rsplit(".", 1)[0], "collection_version": collection_version(),
                     "ansible_core": ansible_version}
            files = _fleet_report.render_files(report, templates, about)
        except (TypeError, ValueError, AttributeError) as exc:
            raise AnsibleActionFail(f"fleet_report_files: {exc}") from exc
        rows = {r["host"]: r for r in report["rows"]}
        host_files = {host_file(dest, h): host_text({k: v for k, v in rows[h].items() if k != "inventory"})
                      for h in report["changed_hosts"]}

        paths = {name: os.path.join(dest, name) for name in files}
        changing = [name for name, text in files.items() if differs(paths[name], text)]
        changing_hosts = sorted(p for p, text in host_files.items() if differs(p, text))
        removing = [stored_paths[h] for h in pruned]
        before = {n: to_text(read_bytes(paths[n]) or b"") for n in changing} if self._task.diff else {}
        if not check:
            os.makedirs(os.path.join(dest, HOSTS_DIR), mode=0o755, exist_ok=True)
            for path in changing_hosts:  # the hosts' own files first: the pages are made from them
                atomic_write(path, host_files[path], 0o644)
            for path in removing:
                os.unlink(path)
            for name in _fleet_report.FILES:
                write_if_changed(paths[name], files[name], 0o644)
        if before:
            result["diff"] = [{"before_header": paths[n], "after_header": paths[n], "before": before[n], "after": files[n]}
                              for n in changing]
        lines = _fleet_report.glance(report, dest)
        if check:
            lines[0] = f"Fleet report: would write {dest}/fleet-report.{{json,md,html}} (check mode writes nothing)"
        if pruned:
            lines.insert(1, f"{'Would remove' if check else 'Removed'} the rows of hosts no longer in the inventory: {' '.join(pruned)}")
        if warnings:
            result["warnings"] = warnings
        # The run's closing lines, printed whatever the callback shows of ok results (the shipped ansible.cfg hides
        # them, so a rerun with nothing to do is a screenful); on stderr, so a machine-read stdout callback (json)
        # stays clean; also returned as msg.
        Display().display("\n".join(lines), stderr=True)
        result.update(
            changed=bool(changing or changing_hosts or removing),
            dest=dest,
            run=run,
            files=[paths[n] for n in _fleet_report.FILES],
            changed_files=[paths[n] for n in changing] + changing_hosts + removing,
            updated_hosts=sorted(report["changed_hosts"]),
            pruned_hosts=pruned,
            summary=report["summary"],
            msg=lines,
        )
        return result
