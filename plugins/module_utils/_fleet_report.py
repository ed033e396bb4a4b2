# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The fleet report: one row per host from what the ml_host role left in its variables.

PRIVATE to the collection: no compatibility promise outside it.

``rows(hostvars, hosts)`` reads, for each host, the facts host_facts gathered
(``ansible_facts.mlhost``), the phase the role reached (``mlhost_phase``),
the failure it recorded (``mlhost_failure``) and the results the phases
registered. A host that never reached the role (unreachable, or stopped
before its facts) still gets a row. The output is deterministic (no times),
so an unchanged fleet rewrites the same report.
"""

from __future__ import annotations

import typing as t

COLUMNS = (
    ("host", "Host"),
    ("status", "Status"),
    ("distro", "Distro"),
    ("gpu", "GPU"),
    ("fabric", "Fabric"),
    ("driver_installed", "Driver installed"),
    ("driver_loaded", "Driver loaded"),
    ("driver_state", "Driver state"),
    ("cuda", "CUDA"),
    ("envs", "Envs"),
    ("reboot_pending", "Reboot pending"),
    ("dkms", "DKMS module"),
    ("reboot_blockers", "Reboot blockers"),
    ("drained", "Drained"),
    ("checks", "Stack check"),
    ("failed_step", "Failed step"),
)


def _get(mapping: t.Any, *keys: str, default: t.Any = None) -> t.Any:
    value = mapping
    for key in keys:
        if value is None:
            return default
        try:
            value = value.get(key) if hasattr(value, "get") else None
        except Exception:  # an undefined or untemplatable host variable counts as absent
            return default
    return default if value is None else value


def _results(registered: t.Any) -> list[t.Any]:
    """Loop results of a registered task, [] when it was skipped or never ran."""
    if not registered or _get(registered, "skipped"):
        return []
    return list(_get(registered, "results", default=[]) or [])


def gpu_summary(facts: t.Any) -> tuple[str | None, int]:
    gpus = _get(facts, "gpus", default=[]) or []
    smi = _get(facts, "nvidia", "smi", default=[]) or []
    names = [g.get("name") for g in (smi or gpus) if g.get("name")]
    count = len(smi or gpus)
    if not count:
        return None, 0
    distinct = sorted(set(names))
    return ", ".join(distinct) or "NVIDIA GPU", count


def envs_of(hv: t.Any) -> list[dict[str, t.Any]]:
    envs = []
    for res in _results(_get(hv, "mlhost_python_env_results")):
        if _get(res, "skipped"):
            continue
        item = _get(res, "item", default={}) or {}
        envs.append({
            "kind": "venv",
            "path": _get(item, "path") or _get(res, "path"),
            "python": _get(res, "python_version"),
            "packages": len(_get(res, "installed", default={}) or {}),
            "failed": bool(_get(res, "failed", default=False)),
        })
    for res in _results(_get(hv, "mlhost_conda_env_results")):
        if _get(res, "skipped"):
            continue
        item = _get(res, "item", default={}) or {}
        envs.append({
            "kind": "conda",
            "path": _get(item, "prefix") or _get(item, "name") or _get(res, "prefix") or _get(res, "name"),
            "python": None,
            "packages": len(_get(res, "packages", default=[]) or []),
            "failed": bool(_get(res, "failed", default=False)),
        })
    return envs


def _ran(registered: t.Any) -> t.Any:
    """A registered task's result, or None when it was skipped or never ran."""
    return None if not registered or _get(registered, "skipped") else registered


# The driver's state after the run: upgraded (this run changed the driver and it is loaded), unchanged,
# reboot_pending (installed, not the loaded one) or failed (the drain or NVIDIA step failed).
DRIVER_STATES = ("upgraded", "unchanged", "reboot_pending", "failed")


def driver_versions(hv: t.Any, facts: t.Any, driver: t.Any) -> tuple[t.Any, t.Any]:
    """(installed, loaded) after the run. A reload's or reboot's outcome beats the driver module's (read before them);
    after a reboot the role read the host again (the facts)."""
    installed = _get(driver, "installed_version") or _get(facts, "nvidia", "installed_version")
    reload_result = _ran(_get(hv, "mlhost_nvidia_reload_result"))
    if _get(_ran(_get(hv, "mlhost_nvidia_reboot_result")), "rebooted"):
        loaded = _get(facts, "nvidia", "loaded_version")
    elif reload_result is not None and "loaded_version" in reload_result:
        loaded = _get(reload_result, "loaded_version")
    else:
        loaded = _get(driver, "loaded_version") or _get(facts, "nvidia", "loaded_version")
    return installed, loaded


def driver_state(hv: t.Any, driver: t.Any, installed: t.Any, loaded: t.Any, failure: t.Any) -> tuple[str | None, str | None]:
    """(state, why) of the NVIDIA driver; (None, None) where the GPU phase did not apply and no driver is there."""
    reload_result = _ran(_get(hv, "mlhost_nvidia_reload_result"))
    if failure and _get(failure, "step") in ("drain", "nvidia"):
        return "failed", _get(failure, "msg")
    if not installed and not _get(hv, "mlhost_gpu_phase", default=False):
        return None, None
    if installed and installed != loaded:
        reasons = (_get(reload_result, "reasons", default=[]) or _get(driver, "reboot_reasons", default=[])
                   or [f"nvidia driver {installed} installed, {loaded or 'none'} loaded"])
        return "reboot_pending", "; ".join(str(r) for r in reasons)
    if _get(_ran(_get(hv, "mlhost_nvidia_driver_result")), "changed") or _get(reload_result, "reloaded"):
        how = "reloaded without a reboot" if _get(reload_result, "reloaded") else (
            "rebooted" if _get(_ran(_get(hv, "mlhost_nvidia_reboot_result")), "rebooted") else None)
        return "upgraded", how
    return "unchanged", None


def row(host: str, hv: t.Any) -> dict[str, t.Any]:
    facts = _get(hv, "ansible_facts", "mlhost")
    phase = _get(hv, "mlhost_phase")
    failure = _get(hv, "mlhost_failure")
    distro = _get(facts, "distro", "name") or " ".join(
        str(x) for x in (_get(facts, "distro", "id"), _get(facts, "distro", "version")) if x) or None
    gpu, gpu_count = gpu_summary(facts)
    # A driver phase skipped because its plan changed nothing leaves only the plan (the same data).
    driver = _get(hv, "mlhost_nvidia_driver_result") or _get(hv, "mlhost_nvidia_driver_plan") or {}
    cuda_result = _get(hv, "mlhost_cuda_toolkit_result") or {}
    toolkits = [tk.get("version") for tk in (_get(facts, "cuda_toolkits", default=[]) or []) if tk.get("version")]
    cuda = _get(cuda_result, "version") or (", ".join(toolkits) if toolkits else None)
    stack = _get(hv, "mlhost_stack_check_result") or {}
    checks = [{"name": c.get("name"), "status": c.get("status"), "detail": c.get("detail")}
              for c in (_get(stack, "checks", default=[]) or []) if c.get("status") != "skipped"]
    installed, loaded = driver_versions(hv, facts, driver)
    state, state_why = driver_state(hv, driver, installed, loaded, failure)
    # The driver module's reboot_required was read before a reload or a reboot: it counts only when neither loaded
    # the driver (the facts and the stack check were read after them).
    driver_reboot = _get(driver, "reboot_required", default=False) and not (installed and installed == loaded)
    reboot = bool(_get(facts, "reboot_required", default=False) or driver_reboot or _get(stack, "reboot_pending", default=False))
    reasons = list(_get(facts, "reboot_reasons", default=[]) or [])
    dkms = _get(facts, "nvidia", "dkms", default={}) or {}

    if failure:
        status, step, error = "failed", _get(failure, "step"), _get(failure, "msg")
    elif phase == "done":
        status, step, error = "ok", None, None
    elif phase:
        status, step, error = "failed", phase, f"stopped during the {phase} phase (unreachable, or a failure the role did not record)"
    else:
        status, step, error = "not_run", "connect", "the host was not reached (unreachable, or stopped before its facts were read)"
    return {
        "host": host,
        "status": status,
        "distro": distro,
        "gpu": gpu,
        "gpu_count": gpu_count,
        "gpu_phase": bool(_get(hv, "mlhost_gpu_phase", default=False)),
        "nvswitch_count": _get(facts, "nvidia", "nvswitch_count"),
        "fabric_service": _get(facts, "nvidia", "fabric_service"),
        "driver_installed": installed,
        "driver_loaded": loaded,
        "driver_state": state,
        "driver_state_reason": state_why,
        "drained": bool(_get(hv, "mlhost_drained", default=False)),
        "cuda": cuda,
        "envs": envs_of(hv),
        "reboot_pending": reboot,
        "reboot_reasons": reasons,
        # host_facts' nvidia.dkms: ok true/false, null where no DKMS nvidia module of the installed driver is registered.
        "dkms": {"ok": _get(dkms, "ok"), "missing": list(_get(dkms, "missing", default=[]) or []),
                 "default_kernel": _get(dkms, "default_kernel")},
        "reboot_blockers": list(_get(facts, "reboot_blockers", default=[]) or []),
        "checks": checks,
        "failed_step": step,
        "error": error,
    }


def rows(hostvars: t.Any, hosts: t.Iterable[str]) -> list[dict[str, t.Any]]:
    out = []
    for host in sorted(set(hosts)):
        try:
            hv = hostvars[host]
        except (KeyError, TypeError):
            hv = {}
        out.append(row(host, hv))
    return out


def summary(report_rows: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {
        "hosts": len(report_rows),
        "ok": sum(1 for r in report_rows if r["status"] == "ok"),
        "failed": [r["host"] for r in report_rows if r["status"] != "ok"],
        "reboot_pending": [r["host"] for r in report_rows if r["reboot_pending"]],
        "reboot_blocked": [r["host"] for r in report_rows if r["reboot_blockers"]],
        "drained": [r["host"] for r in report_rows if r["drained"]],
        "gpu_hosts": [r["host"] for r in report_rows if r["gpu_count"] or r["gpu_phase"]],
    }


def fabric_cell(nvswitches: t.Any, service: t.Any) -> str:
    """'4 NVSwitch, fabric_manager'; the service alone without a switch on the bus ('imex'); '-' for none or unknown."""
    count = nvswitches if isinstance(nvswitches, int) and not isinstance(nvswitches, bool) else 0
    service = service if isinstance(service, str) and service else None
    if count and service:
        return f"{count} NVSwitch, {service}"
    if service and service != "none":
        return service
    return f"{count} NVSwitch" if count else "-"


def cell(r: dict[str, t.Any], key: str) -> str:
    """A row's value as table text (Markdown and HTML share it)."""
    value = r.get(key)
    if key == "gpu":
        return f"{r['gpu_count']} x {value}" if value else "-"
    if key == "fabric":
        return fabric_cell(r.get("nvswitch_count"), r.get("fabric_service"))
    if key == "envs":
        return ", ".join(f"{e['path']}{' (failed)' if e['failed'] else ''}" for e in value) or "-"
    if key == "checks":
        return ", ".join(f"{c['name']}: {c['status']}" for c in value) or "-"
    if key in ("reboot_pending", "drained"):
        return "yes" if value else "no"
    if key == "dkms":
        if value["ok"] is None:
            return "-"
        return "ok" if value["ok"] else f"missing for {', '.join(value['missing'])}"
    if key == "reboot_blockers":
        return "; ".join(value) or "-"
    if key == "driver_state":
        return "-" if not value else value.replace("_", " ") + (f": {r['driver_state_reason']}" if r["driver_state_reason"] else "")
    if key == "failed_step":
        return f"{value}: {r['error']}" if value else "-"
    return "-" if value in (None, "", []) else str(value)


def report(hostvars: t.Any, hosts: t.Iterable[str]) -> dict[str, t.Any]:
    report_rows = rows(hostvars, hosts)
    return {
        "columns": [{"key": k, "title": title} for k, title in COLUMNS],
        "rows": report_rows,
        "table": [[cell(r, k) for k, _title in COLUMNS] for r in report_rows],
        "summary": summary(report_rows),
    }


# The report's files, in the order they are written: the JSON first (what tools read), then the pages.
FILES = ("fleet-report.json", "fleet-report.md", "fleet-report.html")


def render_files(the_report: dict[str, t.Any], templates: dict[str, str]) -> dict[str, str]:
    """The three files' text: the JSON from the report, the Markdown and HTML pages from their templates.

    ``templates`` maps ``md`` and ``html`` to the Jinja2 text of roles/ml_host/templates/fleet-report.*.j2;
    they are rendered as ansible-core's template module renders them (trim_blocks, no autoescape: the HTML
    template escapes every cell itself), with the report as ``mlhost_fleet_report``.
    """
    import json

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, keep_trailing_newline=True, autoescape=False)
    out = {FILES[0]: json.dumps({"summary": the_report["summary"], "hosts": the_report["rows"]}, indent=2, sort_keys=True) + "\n"}
    for kind in ("md", "html"):
        out[f"fleet-report.{kind}"] = env.from_string(templates[kind]).render(mlhost_fleet_report=the_report)
    return out


def glance(the_report: dict[str, t.Any], directory: str) -> list[str]:
    """The lines the run ends with: where the report is, the summary, one line per host."""
    s = the_report["summary"]
    return ([f"Fleet report: {directory}/fleet-report.{{json,md,html}}",
             f"Hosts: {s['hosts']}, ok: {s['ok']}, failed: {' '.join(s['failed']) or 'none'}, "
             f"reboot pending: {' '.join(s['reboot_pending']) or 'none'}, "
             f"reboot blocked: {' '.join(s['reboot_blocked']) or 'none'}, "
             f"drained: {' '.join(s['drained']) or 'none'}"]
            + [" | ".join(cells) for cells in the_report["table"]])
