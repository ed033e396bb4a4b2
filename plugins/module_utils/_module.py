# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The one entry of every mlinfra.mlhost module: argument spec, plan, then apply.

PRIVATE to the collection: no compatibility promise outside it.

A module file holds its documentation, a module-level ``ARGUMENT_SPEC`` and::

    def main() -> None:
        run_module(ARGUMENT_SPEC, MyWorker)

The worker's ``plan()`` checks every option, reads the host and returns a ``Plan``: whether
anything would change, the result keys, the diff and the steps. It changes nothing on the
host. ``apply(plan)`` then does exactly the plan's steps, and only when the plan changes
something and the task is not in check mode: check mode *is* the plan, there is no other
check-mode branch. ``changed`` and ``diff`` come from the plan.

A refusal or failure is a ``ModuleError`` (message + details), turned into ``fail_json`` with
the commands run; any other exception becomes an "internal error" failure that names the
module and the exception instead of ansible-core's bare ``Module failed:``. Everything
returned or printed is masked (``_errors.mask``): no URL credential leaves a module.
"""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask, mask_text
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

__all__ = ["ModuleError", "Plan", "Host", "Worker", "run_module", "execute", "shown_commands"]


class Plan:
    """What a run would do, computed before anything changes.

    ``changed``: whether apply would change the host. ``result``: the keys returned either way
    (in check mode as the plan would leave them). ``diff``: ``before``/``after`` (or a list of
    such dicts), shown with ``--diff``. ``steps``: the worker's own description of the work, in
    order, for ``apply``. ``warnings``: printed after the run.
    """

    def __init__(
        self,
        changed: bool = False,
        result: dict[str, t.Any] | None = None,
        diff: t.Any = None,
        steps: list[t.Any] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.changed = bool(changed)
        self.result = result if result is not None else {}
        self.diff = diff
        self.steps = steps if steps is not None else []
        self.warnings = warnings if warnings is not None else []

    def __repr__(self) -> str:
        return f"Plan(changed={self.changed!r}, steps={self.steps!r})"


class Host:
    """What a worker gets: the params, the one door to the shell, the root to read, a downloader."""

    def __init__(self, module: t.Any, runner: Runner, sysroot: Sysroot | None = None) -> None:
        self.module = module
        self.params: dict[str, t.Any] = module.params
        self.runner = runner
        self.check_mode: bool = bool(getattr(module, "check_mode", False))
        self.diff_mode: bool = bool(getattr(module, "_diff", False))
        self.sysroot = sysroot or Sysroot("/")

    def fetch(self, url: str, timeout: int = 60, ca_path: str | None = None) -> t.Any:
        """An open HTTP(S) response for ``url`` (ansible-core's ``fetch_url``: proxy variables and CA honoured).

        Raises ModuleError with the URL masked when the download does not answer 200."""
        # Imported here, not at the top: ansible.module_utils.urls (http.client, ssl, email, ...) is about 30 ms of
        # every module run's start, and most runs (every plan of a rerun) download nothing. AnsiballZ still ships it.
        from ansible.module_utils.urls import fetch_url

        response, info = fetch_url(self.module, url, timeout=timeout, ca_path=ca_path)
        if response is None or info.get("status") != 200:
            raise ModuleError(
                f"Downloading {mask_text(url)} failed: {mask_text(str(info.get('msg')))} (HTTP status {info.get('status')}). "
                "Check the URL, the proxy (proxy_env) and the CA bundle. Nothing was changed."
            )
        return response


class Worker:
    """Base of every module's worker: ``plan()`` reads and decides, ``apply(plan)`` acts."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.params = host.params
        self.runner = host.runner

    def plan(self) -> Plan:
        raise NotImplementedError

    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        """Carry out ``plan.steps``; returns result keys that only the real run knows (or None)."""
        return None


def shown_commands(runner: Runner) -> list[str]:
    """The commands a run ran, as returned: joined, long arguments (inline scripts) elided, masked."""
    return [mask_text(" ".join(a if len(a) < 200 else "<script>" for a in argv)) for argv in runner.calls]


def _module_name(module: t.Any) -> str:
    name = getattr(module, "_name", "") or ""
    return name if name.startswith("mlinfra.") else f"mlinfra.mlhost.{name or 'module'}"


def execute(module: t.Any, worker_cls: t.Callable[[Host], Worker], sysroot: Sysroot | None = None) -> None:
    """Run ``worker_cls`` for an AnsibleModule (or a test double with the same methods) and exit."""
    runner = None
    try:
        runner = Runner(module)
        worker = worker_cls(Host(module, runner, sysroot))
        plan = worker.plan()
        result = dict(plan.result)
        if plan.changed and not module.check_mode:
            result.update(worker.apply(plan) or {})
    except ModuleError as exc:
        details = {k: v for k, v in exc.details.items() if v is not None}
        details.setdefault("commands", shown_commands(runner) if runner else [])
        module.fail_json(msg=mask_text(exc.msg), **mask(details))
        return
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(
            msg=mask_text(
                f"Internal error in {_module_name(module)}: {type(exc).__name__}: {exc}. Nothing after this point ran. "
                "This is a bug in the collection: report it with the task's options (secrets removed)."
            ),
            exception=mask_text(traceback.format_exc()),
            commands=shown_commands(runner) if runner else [],
        )
        return
    for warning in plan.warnings:
        module.warn(mask_text(warning))
    result["changed"] = plan.changed
    if plan.diff and getattr(module, "_diff", False):
        result["diff"] = mask(plan.diff)
    else:
        result.pop("diff", None)
    result.setdefault("commands", shown_commands(runner))
    module.exit_json(**mask(result))


def run_module(argument_spec: dict[str, t.Any], worker_cls: t.Callable[[Host], Worker], **module_kwargs: t.Any) -> None:
    """The whole ``main()`` of a module."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    execute(module, worker_cls)
