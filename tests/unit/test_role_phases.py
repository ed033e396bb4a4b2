# SPDX-License-Identifier: GPL-3.0-or-later
"""The ml_host role skips its change phases as one include when nothing is to change (tasks/phases.yml).

That is only right while every task in those phases either waits for a plan that changes something
(``mlhost_plan_first_change``, or a registered plan result that ``is changed``), is a phase mark, or
is named in main.yml's condition for the include. A new task that runs on every rerun without a plan
would be silently skipped: this test names it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TASKS = Path(__file__).resolve().parents[2] / "roles" / "ml_host" / "tasks"


def _tasks(name: str) -> list[dict]:
    out = []
    for task in yaml.safe_load((TASKS / name).read_text()) or []:
        if "ansible.builtin.import_tasks" in task:
            out.extend(_tasks(task["ansible.builtin.import_tasks"]))
        else:
            out.append(task)
    return out


def _when(task: dict) -> str:
    when = task.get("when", "")
    return " and ".join(when) if isinstance(when, list) else str(when)


def include() -> dict:
    main = yaml.safe_load((TASKS / "main.yml").read_text())
    block = main[0]["block"]
    return next(t for t in block if t.get("ansible.builtin.include_tasks") == "phases.yml")


def test_phases_are_the_change_phases_in_order():
    files = [t["ansible.builtin.import_tasks"] for t in yaml.safe_load((TASKS / "phases.yml").read_text())]
    assert files == ["trust.yml", "build_tools.yml", "nvidia.yml", "containers.yml", "python.yml", "conda.yml"]
    main = (TASKS / "main.yml").read_text()
    for name in files:  # not imported a second time beside the include
        assert f"import_tasks: {name}" not in main


def test_include_runs_always_and_on_any_planned_change():
    task = include()
    assert task["tags"] == ["always"]
    assert "mlhost_plan_first_change | default(0) | int < mlhost_phase_order | length" in _when(task)


def test_every_unplanned_task_is_named_in_the_include_condition():
    condition = _when(include())
    unplanned = []
    for task in _tasks("phases.yml"):
        when = _when(task)
        if "ansible.builtin.set_fact" in task and "mlhost_phase" in task["ansible.builtin.set_fact"]:
            continue  # a phase mark
        if "mlhost_plan_first_change" in when or " is changed" in when:
            continue  # waits for a plan that changes something
        # What the task waits for beyond the GPU phase must be in the include's condition.
        names = [n for n in ("mlhost_container_runtimes", "mlhost_mig_layout") if n in when]
        if not names or not all(n in condition for n in names):
            unplanned.append(task.get("name"))
    assert unplanned == [], f"tasks that run without a plan but are not in main.yml's phases condition: {unplanned}"
