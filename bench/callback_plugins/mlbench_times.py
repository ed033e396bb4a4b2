# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Benchmark recorder: every task result with its host, start and end time, and the play recap, as JSON.

Used by bench/mlbench.py only (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=mlbench_times, MLBENCH_TIMES_FILE=<path>). It keeps no
result content beyond the status, `changed` and how many commands a module says
it ran, so nothing a task was given (index URLs, proxies) reaches the file.
"""

from __future__ import annotations

DOCUMENTATION = """
name: mlbench_times
type: aggregate
short_description: Records each task's host, duration and status for the benchmarks
description:
  - Writes one JSON document to E(MLBENCH_TIMES_FILE) when the playbook ends.
requirements:
  - enabled in the configuration (C(ANSIBLE_CALLBACKS_ENABLED=mlbench_times))
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mlbench_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._started: dict[tuple[str, str], float] = {}
        self._records: list[dict] = []
        self._t0 = time.monotonic()

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = self._now()

    def _record(self, result, status: str) -> None:
        host = result._host.get_name()
        task = result._task
        end = self._now()
        start = self._started.pop((host, task._uuid), end)
        res = result._result if isinstance(result._result, dict) else {}
        commands = res.get("commands")
        self._records.append({
            "host": host,
            "task": task.get_name(),
            "action": task.action,
            "status": status,
            "changed": bool(res.get("changed", False)),
            "start": round(start, 4),
            "end": round(end, 4),
            "commands": len(commands) if isinstance(commands, list) else None,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        path = os.environ.get("MLBENCH_TIMES_FILE")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"recap": recap, "tasks": self._records, "wall": round(self._now(), 3)}, handle, indent=1)
