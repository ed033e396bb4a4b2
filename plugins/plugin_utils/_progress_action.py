# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Progress on long installs: the installing modules run as an async job, polled from the controller.

PRIVATE to the collection: no compatibility promise outside it.

The action plugins of nvidia_driver, cuda_toolkit, build_tools and python_env are this class. Outside check mode
the module starts as an async job (ansible-core's own async_wrapper) with ``MLHOST_PROGRESS_FILE`` in its
environment; the module hands that file to the package manager as its status output (apt-get's Status-Fd, pip's
log: module_utils/_progress.py). This plugin polls the job with ``async_status`` and, once the job has run for
``mlhost_progress_interval`` seconds (15 by default), prints one line per poll on stderr (where the glance goes,
so the quiet ansible.cfg does not hide it), read from that file. A job that ends sooner prints nothing. When the
job ends, its result is the task's result as it is: ``changed``, the diff, warnings and, on failure, the module's
own message.

Not async (the module runs as any module does): check mode (a plan), ``mlhost_progress: false``, a task that sets
``async`` itself, a connection with native async.
"""

from __future__ import annotations

import base64
import secrets
import time
import typing as t

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _progress

display = Display()

# Seconds between the first checks (a job that has nothing to do ends in a second or two; each check is a module run),
# then every interval.
EARLY_CHECKS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 3.0)
JOB_KEYS = ("ansible_job_id", "finished", "started", "results_file", "_ansible_parsed")


class ProgressAction(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        wanted = boolean(task_vars.get("mlhost_progress", False), strict=False)
        if self._task.check_mode or not wanted or self._task.async_val or self._connection.has_native_async:
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        return self._run_polled(task_vars)

    def _run_polled(self, task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        interval = max(1.0, float(task_vars.get("mlhost_progress_interval", 15)))
        limit = int(task_vars.get("mlhost_progress_timeout", 14400))
        async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")
        progress_file = f"{async_dir.rstrip('/')}/mlhost-progress-{secrets.token_hex(8)}"
        environment = self._task.environment
        if environment is None:
            environment = self._task.environment = []
        index = len(environment)
        environment.append({_progress.ENV: progress_file})
        self._task.async_val = limit
        try:
            started = self._execute_module(task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0
            del environment[index]
        jid = started.get("ansible_job_id")
        if not jid:  # the job did not start: its own error
            return started
        host = task_vars.get("inventory_hostname", "")
        name = self._task.get_name()
        begun = time.monotonic()
        checks = iter(EARLY_CHECKS)
        status: t.Dict[str, t.Any] = {}
        while True:
            time.sleep(next(checks, interval))
            status = self._call("ansible.builtin.async_status", {"jid": jid, "_async_dir": async_dir}, task_vars)
            if status.get("finished") or "ansible_job_id" not in status:
                break
            elapsed = time.monotonic() - begun
            if elapsed >= interval:
                slurped = self._call("ansible.builtin.slurp", {"src": progress_file}, task_vars)
                text = ""
                if slurped.get("content"):
                    text = base64.b64decode(slurped["content"]).decode("utf-8", "replace")
                line = _progress.summary(text) or "running"
                display.display(f"  {host}: {name}: {line} ({elapsed:.0f} s)", stderr=True)
        self._call("ansible.builtin.async_status", {"jid": jid, "mode": "cleanup", "_async_dir": async_dir}, task_vars)
        if status.get("msg") == "could not find job" or ("ansible_job_id" not in status and not status.get("finished")):
            # async_status could not read the job (its file gone, or the job died without writing a result)
            msg = status.get("msg") or "the job left no result"
            return {"failed": True, "msg": f"{name}: the install job {jid} ended without a result ({msg}). See the host's journal, then rerun."}
        for key in JOB_KEYS:
            status.pop(key, None)
        return status

    def _call(self, module: str, args: t.Dict[str, t.Any], task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        out = self._execute_module(module_name=module, module_args=args, task_vars=task_vars)
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return out
