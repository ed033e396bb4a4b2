# SPDX-License-Identifier: GPL-3.0-or-later
"""The polling action plugin with its remote calls stood in for (hand-written job states in the shapes async_status
returns), the progress file being the captured apt Status-Fd output (fixtures/README.md)."""

from __future__ import annotations

import base64
import os
from unittest import mock

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _progress
from ansible_collections.mlinfra.mlhost.plugins.plugin_utils import _progress_action

APT = open(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "progress", "apt-status-fd.txt"),
           encoding="utf-8").read()


class Clock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def monotonic(self):
        return self.now


def make(check_mode=False, polls_running=0, final=None):
    task = mock.MagicMock()
    task.check_mode = check_mode
    task.async_val = 0
    task.environment = []
    task.args = {"profiles": ["compilers"]}
    task.get_name.return_value = "Install build tools"
    connection = mock.MagicMock()
    connection.has_native_async = False
    action = _progress_action.ProgressAction(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock())
    calls = []
    state = {"left": polls_running}

    def execute(module_name=None, module_args=None, task_vars=None, wrap_async=False, **kwargs):
        calls.append((module_name, dict(module_args or {}), wrap_async, list(task.environment), task.async_val))
        if module_name is None:
            if wrap_async:
                return {"ansible_job_id": "j1", "started": 1, "finished": 0, "changed": True}
            return {"changed": True, "plan": "sync"}
        if module_name == "ansible.builtin.slurp":
            return {"content": base64.b64encode(APT.encode()).decode()}
        if module_args.get("mode") == "cleanup":
            return {"ansible_job_id": "j1", "erased": "x"}
        if state["left"] > 0:
            state["left"] -= 1
            return {"ansible_job_id": "j1", "started": 1, "finished": 0}
        return dict(final or {"changed": False, "installed": []}, ansible_job_id="j1", started=1, finished=1,
                    results_file="/root/.ansible_async/j1")

    action._execute_module = execute
    action._remove_tmp_path = lambda *a, **k: None
    action.get_shell_option = lambda name, default=None: default
    return action, calls, task


def run(action, task_vars=None):
    clock = Clock()
    lines = []
    with mock.patch.object(_progress_action.time, "sleep", clock.sleep), \
            mock.patch.object(_progress_action.time, "monotonic", clock.monotonic), \
            mock.patch.object(_progress_action.display, "display", lambda msg, **kw: lines.append((msg, kw))):
        result = action.run(task_vars=dict({"inventory_hostname": "gpu01", "mlhost_progress": True}, **(task_vars or {})))
    return result, lines


def test_off_unless_asked():
    action, calls, task = make()
    clock = Clock()
    with mock.patch.object(_progress_action.time, "sleep", clock.sleep):
        result = action.run(task_vars={"inventory_hostname": "gpu01"})
    assert result == {"changed": True, "plan": "sync"}


def test_check_mode_is_a_plain_run():
    action, calls, task = make(check_mode=True)
    result, lines = run(action)
    assert result["plan"] == "sync"
    assert [c[2] for c in calls] == [False] and lines == []


def test_turned_off_is_a_plain_run():
    action, calls, task = make()
    result, lines = run(action, {"mlhost_progress": "false"})
    assert result["plan"] == "sync" and [c[2] for c in calls] == [False]


def test_short_job_prints_nothing_and_keeps_the_modules_result():
    action, calls, task = make(polls_running=1)
    result, lines = run(action)
    assert lines == []
    assert result == {"changed": False, "installed": []}
    name, args, wrap, environment, async_val = calls[0]
    assert wrap and async_val == 14400
    assert list(environment[0]) == [_progress.ENV]
    assert environment[0][_progress.ENV].startswith("~/.ansible_async/mlhost-progress-")
    assert task.environment == [] and task.async_val == 0  # restored for the next item of a loop
    assert calls[-1][1]["mode"] == "cleanup"


def test_long_job_prints_a_line_per_poll_at_most_every_interval():
    action, calls, task = make(polls_running=12, final={"changed": True, "installed": ["make"]})
    result, lines = run(action)
    assert result == {"changed": True, "installed": ["make"]}
    assert lines and all(kw == {"stderr": True} for msg, kw in lines)
    assert lines[0][0] == "  gpu01: Install build tools: apt: 92% done, 3 packages set up (Installed patch (amd64)) (15 s)"
    times = [float(msg.rsplit("(", 1)[1].split()[0]) for msg, kw in lines]
    assert all(b - a <= 30 for a, b in zip(times, times[1:]))
    assert len(lines) == len([c for c in calls if c[0] == "ansible.builtin.slurp"])


def test_a_failure_is_the_modules_own_message():
    final = {"failed": True, "changed": False, "msg": "Package(s) not found in the configured apt sources: nvidia-drivr."}
    action, calls, task = make(polls_running=0, final=final)
    result, lines = run(action)
    assert result["failed"] and result["msg"] == final["msg"]
    assert "ansible_job_id" not in result and "finished" not in result


def test_a_job_that_vanished_names_itself():
    action, calls, task = make()
    original = action._execute_module

    def gone(module_name=None, module_args=None, **kwargs):
        if module_name == "ansible.builtin.async_status" and module_args.get("mode") != "cleanup":
            return {"failed": True, "msg": "could not find job", "ansible_job_id": "j1", "started": 1, "finished": 1}
        return original(module_name=module_name, module_args=module_args, **kwargs)

    action._execute_module = gone
    result, lines = run(action)
    assert result["failed"] and "ended without a result (could not find job)" in result["msg"]
