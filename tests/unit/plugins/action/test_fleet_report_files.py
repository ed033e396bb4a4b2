# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet_report_files action: the three files written in one controller step, exact changed, check mode writes nothing.

Run through ansible-playbook itself (local connection, the collection as the suite installs it), since an action
plugin's behaviour is its task's: check mode, diff and changed come from ansible-core.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from ansible_collections.mlinfra.mlhost.plugins.filter.fleet_report import FilterModule

REPO = pathlib.Path(__file__).resolve().parents[4]
HOSTVARS = {
    "h1": {"mlhost_phase": "done",
           "mlhost_python_env_results": {"results": [{"item": {"path": "/opt/x"}, "python_version": "3.11.2",
                                                      "installed": {"six": "1.17.0"}}]}},
    "h2": {"mlhost_phase": "python", "mlhost_failure": {"step": "python", "task": "t", "msg": "No matching <dist> & co"}},
}


def play(tmp_path: pathlib.Path, dest: str, *flags: str) -> dict:
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([
        {"hosts": "h1,h2", "gather_facts": False, "tasks": [
            {"name": "what the role would have recorded", "ansible.builtin.set_fact": {
                "mlhost_phase": "{{ mlhost_test_vars[inventory_hostname].mlhost_phase }}",
                "mlhost_failure": "{{ mlhost_test_vars[inventory_hostname].mlhost_failure | default(omit) }}",
                "mlhost_python_env_results":
                    "{{ mlhost_test_vars[inventory_hostname].mlhost_python_env_results | default(omit) }}"}}]},
        {"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "write", "mlinfra.mlhost.fleet_report_files": {"dest": dest, "hosts": ["h1", "h2", "h3"]},
             "register": "written"},
            {"name": "show", "ansible.builtin.debug": {"var": "written"}}]},
    ]))
    (tmp_path / "vars.json").write_text(json.dumps({"mlhost_test_vars": HOSTVARS}))
    inventory = tmp_path / "inventory"
    inventory.write_text(f"h1\nh2\nh3\n[all:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(REPO / ".build" / "collections")))
    playbook = pathlib.Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(playbook), "-i", str(inventory), "-e", f"@{tmp_path / 'vars.json'}", *flags, str(book)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    tasks = json.loads(proc.stdout)["plays"][1]["tasks"]
    return tasks[0]["hosts"]["localhost"]


def test_writes_the_three_files_then_changes_nothing(tmp_path):
    dest = tmp_path / "report"
    first = play(tmp_path, str(dest))
    assert first["changed"] is True and len(first["changed_files"]) == 3
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["fleet-report.html", "fleet-report.json", "fleet-report.md"]
    assert all((dest / n).stat().st_mode & 0o777 == 0o644 for n in names)
    data = json.loads((dest / "fleet-report.json").read_text())
    expected = FilterModule().filters()["fleet_report"](HOSTVARS, ["h1", "h2", "h3"])
    assert data == {"summary": expected["summary"], "hosts": expected["rows"]}
    assert "No matching &lt;dist&gt; &amp; co" in (dest / "fleet-report.html").read_text()  # cells are escaped
    assert first["msg"][1] == "Hosts: 3, ok: 1, failed: h2 h3, reboot pending: none, reboot blocked: none, drained: none"
    again = play(tmp_path, str(dest))
    assert again["changed"] is False and again["changed_files"] == []


def test_check_mode_writes_nothing_and_says_so(tmp_path):
    dest = tmp_path / "report"
    planned = play(tmp_path, str(dest), "--check", "--diff")
    assert planned["changed"] is True and not dest.exists()
    assert planned["msg"][0].startswith(f"Fleet report: would write {dest}/")
    names = ("fleet-report.json", "fleet-report.md", "fleet-report.html")
    assert [d["after_header"] for d in planned["diff"]] == [str(dest / n) for n in names]


def test_a_relative_dest_is_refused(tmp_path):
    book = tmp_path / "bad.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "write", "mlinfra.mlhost.fleet_report_files": {"dest": "report", "hosts": []}}]}]))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(REPO / ".build" / "collections")))
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(book)], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "dest must be an absolute directory on the controller" in proc.stdout
    assert not (tmp_path / "report").exists()
