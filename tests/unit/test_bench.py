# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark harness's own logic (bench/mlbench.py) and its recorder callback.

The harness runs for real in the suite's bench stage (bench/run.sh --smoke);
these tests pin what its figures are computed from: the baseline doing the same
work as the profile, the process-accounting parser on a dump captured in a bench
container, the mirror's Release file, and the recorder on a real playbook run.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "bench"


def _load():
    spec = importlib.util.spec_from_file_location("mlbench", REPO / "bench" / "mlbench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mlbench = _load()


def test_baseline_installs_exactly_the_profile_packages():
    text = (REPO / "bench" / "baseline.sh").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    line = next(ln for ln in joined.splitlines() if ln.startswith("apt-get install"))
    words = [w for w in shlex.split(line.split(">")[0]) if not w.startswith("-")][2:]
    assert sorted(words) == sorted(mlbench.profile_packages())


def test_baseline_builds_the_same_env_from_the_same_wheelhouse():
    text = (REPO / "bench" / "baseline.sh").read_text()
    assert f"python3 -m venv {mlbench.ENV_PATH}" in text
    assert f"--no-index --find-links {mlbench.WHEELS}" in text
    env = mlbench.host_vars("pip", pathlib.Path("/tmp/r"))["mlhost_python_envs"][0]
    assert env["path"] == mlbench.ENV_PATH and env["find_links"] == mlbench.WHEELS and env["offline"] is True
    assert env["packages"] == mlbench.REQUIREMENTS
    assert all("==" in req for req in mlbench.REQUIREMENTS), "the requirement set is a lock: every one pinned"


def test_tool_requirements_follow_the_module():
    text = (REPO / "plugins" / "module_utils" / "_venv.py").read_text()
    uv = re.search(r'TOOL_UV_VERSION = "([^"]+)"', text).group(1)
    assert f"uv=={uv}" in mlbench.tool_requirements()


def test_dump_acct_parser_on_a_captured_rerun():
    """A real dump-acct of an ml_host rerun in a bench container (BSD accounting inside its pid namespace)."""
    counts = mlbench.parse_dump_acct((FIXTURES / "dump-acct-rerun.txt").read_text())
    assert "accton" not in counts
    assert counts["dpkg-query"] == 1
    assert mlbench.package_queries(counts) == 1
    # Every module Ansible runs on the host is `sh -c '... python3.11 ... && sleep 0'` (7 of them); the first sh is
    # the docker exec that started accounting when this was captured.
    assert counts == {"sh": 8, "sleep": 7, "python3.11": 6, "python3": 4, "python": 3, "timeout": 3, "dpkg-query": 1}
    assert sum(counts.values()) == 32


def test_dump_acct_parser_ignores_noise():
    assert mlbench.parse_dump_acct("\n\nno pipes here\n|v3|x\n") == {}
    assert mlbench.package_queries({"rpm": 2, "dpkg-query": 1, "python3": 9, "apt-get": 1}) == 3


def test_summarize():
    assert mlbench.summarize([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert mlbench.summarize([]) == {"n": 0}


def test_rotate_interleaves_every_order():
    orders = [tuple(mlbench.rotate(["a", "b", "c"], k)) for k in range(3)]
    assert len(set(orders)) == 3 and all(sorted(o) == ["a", "b", "c"] for o in orders)
    assert {o[0] for o in orders} == {"a", "b", "c"}


def test_release_file_lists_every_index_with_its_sha256():
    import datetime as dt

    packages = b"Package: x\nVersion: 1\n\n"
    files = {"Packages": packages, "Packages.gz": gzip.compress(packages, mtime=0)}
    text = mlbench.release_file(files, dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc))
    assert "Date: Tue, 01 Dec 2026 12:00:00 UTC\n" in text
    assert f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n" in text
    assert text.index("SHA256:") < text.index(" Packages.gz")


def test_inventory_reaches_each_host_on_its_own_loopback_port():
    inv = mlbench.inventory([1, 2], pathlib.Path("/k"))["all"]
    assert inv["hosts"]["mlbench-01"] == {"ansible_host": "127.0.0.1", "ansible_port": mlbench.PORT0 + 1}
    assert inv["hosts"]["mlbench-02"]["ansible_port"] == mlbench.PORT0 + 2
    assert inv["vars"]["ansible_ssh_private_key_file"] == "/k"


def _results():
    s = {"median": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    machine = {"cpus": 2, "cpu_model": "x", "memory": "1 kB", "kernel": "k", "python": "3.11", "docker": "20",
               "load_start": [1.0, 1.0, 1.0], "load_end": [1.0, 1.0, 1.0]}
    rerun = {"round": 0, "seconds": 8.0, "changed": 0, "tasks_run": 32, "processes": 32, "package_queries": 1,
             "by_command": {"sh": 7}}
    return {
        "machine": machine, "started": "T", "smoke": True,
        "first": {"runs": {"baseline": [{"processes": 9}], "ours-pip": [{"processes": 9}], "ours-uv": [{"processes": 9}]},
                  "summary": {"baseline": s, "ours-pip": s, "ours-uv": s},
                  "ratio_to_baseline": {"ours-pip": s, "ours-uv": s}},
        "rerun": {"runs": {"ours-uv": [rerun]}, "summary": {"ours-uv": s}},
        "fleet": {"summary": {"1": {"first": s, "rerun": s, "rerun_changed": 0}}},
        "facts": {"calls": 3, "summary": {"host_facts": s, "setup_min": s, "setup_all": s},
                  "ratio_host_facts_to_setup_all": 1.0},
        "env": {"summary": {"pip": s}, "ratios": {"installers_pip_over_uv": 2.0}},
    }


def test_summary_has_every_section():
    text = mlbench.summary_md(_results())
    for heading in ("First provision", "Idempotent rerun", "Fleet scaling", "Facts, per call", "Env builds"):
        assert f"## {heading}" in text
    assert mlbench.check(_results()) == []


def test_check_flags_a_rerun_that_changed_something():
    res = _results()
    res["rerun"]["runs"]["ours-uv"][0]["changed"] = 2
    res["fleet"]["summary"]["1"]["rerun_changed"] = 1
    problems = mlbench.check(res)
    assert len(problems) == 2 and "changed 2 tasks" in problems[0]


def _fleet32(changed=0, in_recap=32):
    s = {"median": 20.0, "min": 19.0, "max": 22.0, "n": 5}
    return {"hosts": 32, "boot_seconds": 60.0, "memory_used_mib": 4000, "seed_first": 30.0, "warm_up": 25.0,
            "warm_up_changed": 1, "runs": {"8": [{"longest_tasks": [["Read the host", 3.0]]}]},
            "summary": {"8": {"rerun": s, "per_host": 0.625, "changed": changed, "hosts_in_recap": in_recap}}}


def test_fleet32_in_the_summary_and_checked():
    res = _results()
    res["fleet32"] = _fleet32()
    text = mlbench.summary_md(res)
    assert "## 32-host rerun" in text and "| 8 | 20.0 | 19.0 | 22.0 | 5 | 0.62 | 0 |" in text
    assert mlbench.check(res) == []
    res["fleet32"] = _fleet32(changed=3, in_recap=31)
    problems = mlbench.check(res)
    assert len(problems) == 2 and "changed 3 tasks" in problems[0] and "only 31" in problems[1]


def test_rerun_split_adds_up_to_the_wall_time():
    times = {"tasks": [
        {"host": "h", "task": "facts", "action": "mlinfra.mlhost.host_facts", "status": "ok", "start": 1.0, "end": 1.5},
        {"host": "h", "task": "phase", "action": "ansible.builtin.set_fact", "status": "ok", "start": 1.6, "end": 1.7},
        {"host": "h", "task": "skip", "action": "ansible.builtin.debug", "status": "skipped", "start": 1.7, "end": 1.8},
        {"host": "h", "task": "report", "action": "mlinfra.mlhost.fleet_report_files", "status": "ok",
         "start": 2.0, "end": 2.2},
        {"host": "other", "task": "facts", "action": "mlinfra.mlhost.host_facts", "status": "ok", "start": 0, "end": 9},
    ]}
    split = mlbench.rerun_split(times, "h", 3.0)
    assert split == {"modules": 0.5, "report": 0.2, "controller_only": 0.1, "scheduling": 0.4,
                     "startup_and_end": 1.8, "modules_tasks": 1, "report_tasks": 1, "controller_only_tasks": 1}
    assert mlbench.rerun_split(times, "nobody", 3.0) == {}


def test_task_spans_take_the_first_start_and_the_last_end():
    times = {"tasks": [
        {"host": "a", "task": "x", "status": "ok", "start": 1.0, "end": 2.0},
        {"host": "b", "task": "x", "status": "ok", "start": 1.5, "end": 4.0},
        {"host": "a", "task": "y", "status": "ok", "start": 4.0, "end": 4.5},
        {"host": "a", "task": "z", "status": "skipped", "start": 5.0, "end": 9.0},
        {"host": "a", "task": "x", "status": "ok", "start": 10.0, "end": 10.2},
    ]}
    assert mlbench.task_spans(times) == [["x", 3.0], ["y", 0.5], ["x #2", 0.2]]
    assert mlbench.run_tasks(times) == {"ran": 4, "skipped": 1}


def test_smoke_arguments():
    args = mlbench.parse_args(["--smoke"])
    assert (args.rounds, args.reruns, args.sizes) == (1, 1, [1, 2])
    assert "fleet32" not in args.only, "the 32-host part takes minutes: not in CI's bench stage"
    assert "fleet32" in mlbench.parse_args([]).only
    assert mlbench.parse_args(["--only", "fleet32", "--fleet32-forks", "8,32"]).fleet32_forks == [8, 32]
    with pytest.raises(SystemExit):
        mlbench.parse_args(["--fleet32-hosts", "41"])
    with pytest.raises(SystemExit):
        mlbench.parse_args(["--rounds", "0"])


def test_recorder_callback_on_a_real_playbook(tmp_path):
    """The recorder writes every task result with its host, status and times, and the recap."""
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "say", "ansible.builtin.debug": {"msg": "hi"}},
        {"name": "change", "ansible.builtin.command": "true", "changed_when": True},
        {"name": "skip", "ansible.builtin.command": "false", "when": False},
    ]}]))
    out = tmp_path / "times.json"
    env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="mlbench_times", MLBENCH_TIMES_FILE=str(out),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    playbook = pathlib.Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(playbook), "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(book)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [(r["task"], r["status"], r["changed"]) for r in data["tasks"]] == [
        ("say", "ok", False), ("change", "ok", True), ("skip", "skipped", False)]
    assert all(r["end"] >= r["start"] >= 0 for r in data["tasks"])
    assert data["recap"]["localhost"]["changed"] == 1
    assert mlbench.recap_changed(data) == {"localhost": 1}
    assert mlbench.tasks_run(data, "localhost") == 2


def test_baseline_steps_from_its_marks():
    out = "mlbench-mark apt 100.0\nmlbench-mark env 120.5\nmlbench-mark check 128.0\nnumpy 2.1.3\n"
    assert mlbench.baseline_steps(out, 30.0) == {"apt": 20.5, "env": 7.5, "rest": 2.0}
    assert mlbench.baseline_steps("numpy 2.1.3\n", 30.0) == {}


def test_baseline_marks_every_step():
    text = (REPO / "bench" / "baseline.sh").read_text()
    assert re.findall(r"^mark (\w+)$", text, re.M) == ["apt", "env", "check"]


def test_ours_steps_split_the_wall_time():
    times = {"tasks": [
        {"host": "h", "task": mlbench.STEP_TASKS["apt"], "start": 1.0, "end": 21.0},
        {"host": "h", "task": mlbench.STEP_TASKS["env"], "start": 22.0, "end": 28.0},
        {"host": "other", "task": mlbench.STEP_TASKS["env"], "start": 0.0, "end": 99.0},
        {"host": "h", "task": "mlinfra.mlhost.ml_host : Read the host", "start": 0.0, "end": 1.0},
    ]}
    assert mlbench.ours_steps(times, "h", 35.0) == {"apt": 20.0, "env": 6.0, "rest": 9.0}


def test_task_durations_leave_the_warm_up_out():
    times = {"tasks": [{"task": "warm-up host_facts", "start": 0.0, "end": 5.0},
                       {"task": "host_facts 1", "start": 5.0, "end": 5.25},
                       {"task": "host_facts_x 1", "start": 6.0, "end": 9.0},
                       {"task": "setup_all 1", "start": 5.25, "end": 6.0}]}
    assert mlbench.task_durations(times, "host_facts ") == [0.25]


def test_the_step_split_names_tasks_that_exist():
    # The first provision's apt/env split sums the module tasks of these names (the plan's and the real one's); an
    # import of the same name in main.yml passed an older form of this test while the env step read 0.00 s.
    import yaml

    for step, name in mlbench.STEP_TASKS.items():
        role, task = name.split(" : ", 1)
        calls = [t for p in (REPO / "roles" / role.rsplit(".", 1)[1] / "tasks").glob("*.yml")
                 for t in yaml.safe_load(p.read_text()) or []
                 if t.get("name") == task and any(k.startswith("mlinfra.mlhost.") for k in t)]
        assert calls, f"{step}: no task named {task!r} calls a module of the collection in {role}"


def test_local_part_not_in_smoke():
    assert "local" not in mlbench.parse_args(["--smoke"]).only, "a first provision in one more host: not in CI's stage"
    assert "local" in mlbench.parse_args([]).only
    assert mlbench.parse_args(["--only", "local", "--reruns", "5"]).only == {"local"}


def test_controller_is_the_site_venv_with_the_tested_ansible_core():
    """The local part's controller is scripts/site.sh's venv (requirements/site.txt): the ansible-core the suite
    pins in requirements/test.txt, every pin exact."""
    site = mlbench.controller_requirements((REPO / "requirements" / "site.txt").read_text())
    test = mlbench.controller_requirements((REPO / "requirements" / "test.txt").read_text())
    core = [r for r in site if r.startswith("ansible-core==")]
    assert core and core[0] in test
    assert all("==" in r for r in site)
    assert mlbench.controller_requirements("# c\n\nx==1  # why\ny==2\n") == ["x==1", "y==2"]


def test_default_inventory_is_this_machine_over_the_local_connection():
    """The local part runs site.yml with the tree's default inventory (no -i): localhost, local connection."""
    import configparser

    import yaml

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    inv = yaml.safe_load((REPO / cfg["defaults"]["inventory"]).read_text())
    assert list(inv["all"]["hosts"]) == ["localhost"]
    assert inv["all"]["hosts"]["localhost"]["ansible_connection"] == "local"


def test_local_command_runs_the_playbook_from_the_tree_and_times_it(tmp_path, monkeypatch):
    """The shell line, run by bash with a stand-in ansible-playbook: from the copy of the tree, -c local, the
    extra vars, the recorder, no inventory named (the default one), and the mlbench-time line."""
    src, venv = tmp_path / "src", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    src.mkdir()
    fake = venv / "bin" / "ansible-playbook"
    fake.write_text('#!/bin/sh\necho "cwd=$(pwd) args=$* cb=$ANSIBLE_CALLBACKS_ENABLED times=$MLBENCH_TIMES_FILE"\n'
                    'echo "out=$ANSIBLE_STDOUT_CALLBACK"\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setattr(mlbench, "CTL_SRC", str(src))
    monkeypatch.setattr(mlbench, "CTL_VENV", str(venv))
    log = tmp_path / "run log"
    cmd = mlbench.local_command("playbooks/site.yml", "/w/v.json", "/w/t.json", str(log))
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True)
    rc, seconds = mlbench.parse_timed(proc.stdout)
    assert rc == 3 and 0 <= seconds < 60
    assert log.read_text().splitlines() == [
        f"cwd={src} args=-c local -e @/w/v.json playbooks/site.yml cb=mlbench_times times=/w/t.json",
        "out=mlinfra.mlhost.default"]


def test_parse_timed():
    assert mlbench.parse_timed("noise\nmlbench-time 0 100.25 106.5\n") == (0, 6.25)
    with pytest.raises(RuntimeError):
        mlbench.parse_timed("mlbench-time 0\n")


def test_pair_ratios_and_split_summary():
    assert mlbench.pair_ratios([6.0, 9.0, 1.0], [2.0, 3.0]) == [3.0, 3.0]
    assert mlbench.pair_ratios([1.0], [0.0]) == []
    splits = [{"modules": 3.0, "scheduling": 1.0}, {}, {"modules": 2.0, "scheduling": 0.5},
              {"modules": 4.0, "scheduling": 0.7}]
    assert mlbench.split_summary(splits) == {"modules": {"median": 3.0, "min": 2.0, "max": 4.0, "n": 3},
                                             "scheduling": {"median": 0.7, "min": 0.5, "max": 1.0, "n": 3}}
    assert mlbench.split_summary([]) == {}


def _local(changed=0):
    s = {"median": 6.0, "min": 5.5, "max": 7.0, "n": 2}
    run = {"round": 0, "seconds": 6.0, "changed": changed, "tasks_run": 30, "processes": 60, "package_queries": 1,
           "by_command": {"python": 9}, "slowest": [["Read the host", 0.7]]}
    return {"controller": {"python": "Python 3.11.2", "ansible": "ansible-playbook [core 2.19.14]",
                           "install_seconds": 9.0},
            "first": {"seconds": 40.0, "changed": 9, "tasks_run": 60},
            "runs": {"rerun": [run, dict(run, round=1)], "floor": []}, "ratios": [4.0, 4.2],
            "summary": {"rerun": s, "floor": s, "ratio": s},
            "split": {"modules": s, "scheduling": s, "modules_tasks": {"median": 4, "min": 4, "max": 4, "n": 2}},
            "floor_split": {"modules": {"median": 0.1, "min": 0.1, "max": 0.1, "n": 2}}}


def test_local_in_the_summary_and_checked():
    res = _results()
    res["local"] = _local()
    text = mlbench.summary_md(res)
    assert "## The main job on the host itself (local connection" in text
    assert "core 2.19.14" in text and "| ratio rerun / floor, per run | 6.00 | 5.50 | 7.00 | 2 |" in text
    assert "| modules | 6.00 | 5.50 | 7.00 | 4 | 0.10 |" in text and "| scheduling | 6.00 | 5.50 | 7.00 | - | - |" in text
    assert mlbench.check(res) == []
    res["local"] = _local(changed=2)
    problems = mlbench.check(res)
    assert problems == ["local-connection rerun 1 changed 2 tasks", "local-connection rerun 2 changed 2 tasks"]
