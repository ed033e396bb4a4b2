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


def play(tmp_path: pathlib.Path, dest: str, *flags: str, hostvars: dict | None = None, hosts: tuple = ("h1", "h2", "h3"),
         inventory_hosts: tuple = ("h1", "h2", "h3"), prune: bool = False) -> dict:
    """One playbook run: the hosts' recorded variables set (tags always, as the role's are), then the report."""
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([
        {"hosts": "all", "gather_facts": False, "tasks": [
            {"name": "what the role would have recorded", "tags": ["always"], "ansible.builtin.set_fact": {
                key: f"{{{{ mlhost_test_vars.get(inventory_hostname, {{}}).{key} | default(omit) }}}}"
                for key in ("mlhost_phase", "mlhost_failure", "mlhost_python_env_results", "mlhost_stack_check_result",
                            "mlhost_validated", "mlhost_phase_marks")} | {"mlhost_test_seen": True}},
            {"name": "facts", "tags": ["always"], "ansible.builtin.set_fact": {
                "ansible_facts": "{{ mlhost_test_vars.get(inventory_hostname, {}).ansible_facts | default({}) }}"}}]},
        {"hosts": "all", "gather_facts": False, "tasks": [
            {"name": "write", "mlinfra.mlhost.fleet_report_files": {"dest": dest, "hosts": list(hosts), "prune": prune},
             "register": "written", "run_once": True, "delegate_to": "localhost", "tags": ["always"]}]},
    ]))
    (tmp_path / "vars.json").write_text(json.dumps({"mlhost_test_vars": HOSTVARS if hostvars is None else hostvars}))
    inventory = tmp_path / "inventory"
    inventory.write_text("\n".join(inventory_hosts) + f"\n[all:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(REPO / ".build" / "collections")))
    playbook = pathlib.Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(playbook), "-i", str(inventory), "-e", f"@{tmp_path / 'vars.json'}", *flags, str(book)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[:3000] + proc.stderr[-4000:]
    tasks = json.loads(proc.stdout)["plays"][1]["tasks"]
    return next(iter(tasks[0]["hosts"].values()))


def hosts_of(dest: pathlib.Path) -> dict:
    return {r["host"]: r for r in json.loads((dest / "fleet-report.json").read_text())["hosts"]}


def test_writes_the_three_files_then_changes_nothing(tmp_path):
    dest = tmp_path / "report"
    first = play(tmp_path, str(dest))
    assert first["changed"] is True and len(first["changed_files"]) == 6 and first["run"] == "full"
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["fleet-report.html", "fleet-report.json", "fleet-report.md", "hosts"]
    assert sorted(p.name for p in (dest / "hosts").iterdir()) == ["h1.json", "h2.json", "h3.json"]
    files = [dest / n for n in names if n != "hosts"] + list((dest / "hosts").iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in files)
    data = json.loads((dest / "fleet-report.json").read_text())
    expected = FilterModule().filters()["fleet_report"](HOSTVARS, ["h1", "h2", "h3"])
    volatile = ("last_seen", "run", "stale", "changed", "phase_times")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in data["hosts"]] == [
        {k: v for k, v in r.items() if k not in volatile} for r in expected["rows"]]
    assert data["summary"] == expected["summary"]
    assert data["about"]["ansible_core"] and data["about"]["collection"] == "mlinfra.mlhost"
    assert all(r["run"] == "full" and r["last_seen"].endswith("Z") for r in data["hosts"])
    assert "No matching &lt;dist&gt; &amp; co" in (dest / "fleet-report.html").read_text()  # cells are escaped
    assert first["msg"][1] == "Hosts: 3, ok: 1, failed: h2 h3, reboot pending: none, reboot blocked: none, drained: none"
    before = {p: p.read_bytes() for p in files}
    again = play(tmp_path, str(dest))
    assert again["changed"] is False and again["changed_files"] == [] and again["updated_hosts"] == []
    assert {p: p.read_bytes() for p in files} == before  # byte for byte, time stamps included


def test_a_limit_run_updates_only_its_hosts(tmp_path):
    dest = tmp_path / "report"
    play(tmp_path, str(dest))
    seen = hosts_of(dest)
    h1 = json.loads(json.dumps(HOSTVARS["h1"]))
    h1["mlhost_python_env_results"]["results"][0]["installed"]["torch"] = "2.5.1+cu124"
    limited = play(tmp_path, str(dest), "--limit", "h1", hostvars={"h1": h1}, hosts=("h1",))
    assert limited["changed"] is True and limited["updated_hosts"] == ["h1"] and limited["run"] == "limit h1"
    rows = hosts_of(dest)
    assert sorted(rows) == ["h1", "h2", "h3"]  # the report is still the fleet
    assert rows["h2"] == seen["h2"] and rows["h3"] == seen["h3"]
    assert rows["h1"]["run"] == "limit h1" and rows["h1"]["envs"][0]["key_packages"]["torch"] == "2.5.1+cu124"
    assert rows["h1"]["envs"][0]["torch_cuda"] == "12.4"


def test_a_tags_run_keeps_the_stack_check_it_did_not_run(tmp_path):
    dest = tmp_path / "report"
    full = json.loads(json.dumps(HOSTVARS))
    full["h1"]["mlhost_stack_check_result"] = {"checks": [{"name": "python", "status": "ok", "detail": "imports"}]}
    play(tmp_path, str(dest), hostvars=full)
    seen = hosts_of(dest)["h1"]
    tagged = json.loads(json.dumps(full))
    del tagged["h1"]["mlhost_stack_check_result"]  # --tags python: the stack check task never ran
    same = play(tmp_path, str(dest), "--tags", "python", hostvars=tagged)
    assert same["changed"] is False and hosts_of(dest)["h1"] == seen  # nothing new: nothing rewritten
    tagged["h1"]["mlhost_python_env_results"]["results"][0]["python_version"] = "3.11.9"
    newer = play(tmp_path, str(dest), "--tags", "python", hostvars=tagged)
    row = hosts_of(dest)["h1"]
    assert newer["changed"] is True and row["run"] == "tags python"
    assert row["checks"] == [{"name": "python", "status": "ok", "detail": "imports"}]
    assert row["stale"] == {"stack check": seen["last_seen"]} and row["envs"][0]["python"] == "3.11.9"
    assert f"stack check from {seen['last_seen']}" in (dest / "fleet-report.html").read_text()
    again = play(tmp_path, str(dest), hostvars=dict(tagged, h1=dict(tagged["h1"], **{
        "mlhost_stack_check_result": full["h1"]["mlhost_stack_check_result"]})))
    assert again["changed"] is False  # the full run after it finds the same: no change


def test_check_mode_writes_nothing_and_says_so(tmp_path):
    dest = tmp_path / "report"
    planned = play(tmp_path, str(dest), "--check", "--diff")
    assert planned["changed"] is True and not dest.exists() and planned["run"] == "check"
    assert planned["msg"][0].startswith(f"Fleet report: would write {dest}/")
    names = ("fleet-report.json", "fleet-report.md", "fleet-report.html")
    assert [d["after_header"] for d in planned["diff"]] == [str(dest / n) for n in names]
    play(tmp_path, str(dest))
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    changed = json.loads(json.dumps(HOSTVARS))
    changed["h1"]["mlhost_phase"] = "python"
    planned = play(tmp_path, str(dest), "--check", hostvars=changed)
    assert planned["changed"] is True and planned["updated_hosts"] == ["h1"]
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before


def test_an_unreachable_host_keeps_its_last_facts_and_ansibles_message(tmp_path):
    dest = tmp_path / "report"
    full = json.loads(json.dumps(HOSTVARS))
    full["h1"]["ansible_facts"] = {"mlhost": {"distro": {"name": "Debian GNU/Linux 12 (bookworm)"}, "kernel": "6.1.0-28-amd64"}}
    play(tmp_path, str(dest), hostvars=full)
    first = hosts_of(dest)["h1"]
    lost = json.loads(json.dumps(HOSTVARS))
    lost["h1"] = {"mlhost_phase": "facts", "mlhost_failure": {
        "step": "facts", "task": "Fail the unreachable host, with what Ansible said", "unreachable": True,
        "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.5 port 22: No route to host"}}
    play(tmp_path, str(dest), hostvars=lost)
    row = hosts_of(dest)["h1"]
    assert row["status"] == "unreachable" and row["failed_step"] == "connect"
    assert row["error"].endswith("No route to host")
    assert row["distro"] == "Debian GNU/Linux 12 (bookworm)" and row["kernel"] == "6.1.0-28-amd64"
    assert row["stale"]["facts"] == first["last_seen"]
    assert json.loads((dest / "fleet-report.json").read_text())["summary"]["unreachable"] == ["h1", "h3"]


def test_a_removed_host_stays_until_pruned(tmp_path):
    dest = tmp_path / "report"
    play(tmp_path, str(dest))
    kept = play(tmp_path, str(dest), hosts=("h1", "h2"), inventory_hosts=("h1", "h2"))
    assert sorted(hosts_of(dest)) == ["h1", "h2", "h3"] and hosts_of(dest)["h3"]["inventory"] is False
    assert kept["summary"]["not_in_inventory"] == ["h3"]
    pruned = play(tmp_path, str(dest), hosts=("h1", "h2"), inventory_hosts=("h1", "h2"), prune=True)
    assert pruned["pruned_hosts"] == ["h3"] and pruned["changed"] is True
    assert sorted(hosts_of(dest)) == ["h1", "h2"] and not (dest / "hosts" / "h3.json").exists()


def test_a_file_that_is_not_a_host_file_is_left_alone(tmp_path):
    dest = tmp_path / "report"
    (dest / "hosts").mkdir(parents=True)
    (dest / "hosts" / "notes.json").write_text('{"mine": true}\n')
    result = play(tmp_path, str(dest), prune=True)
    assert any("notes.json is not a host file" in w for w in result.get("warnings", []))
    assert (dest / "hosts" / "notes.json").read_text() == '{"mine": true}\n'


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
