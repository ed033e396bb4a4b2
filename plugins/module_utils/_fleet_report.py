# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The fleet report: one row per host from what the ml_host role left in its variables.

PRIVATE to the collection: no compatibility promise outside it.

``rows(hostvars, hosts)`` reads, for each host, the facts host_facts gathered
(``ansible_facts.mlhost``), the phase the role reached (``mlhost_phase``),
the failure it recorded (``mlhost_failure``) and the results the phases
registered. A host that never reached the role (unreachable, or stopped
before its facts) still gets a row. ``merge`` lays a run's row over the row
kept from earlier runs (what the run did not read keeps its earlier value,
marked ``stale``), and ``report`` merges every kept row with this run's: the
action fleet_report_files keeps them in ``<dest>/hosts/<host>.json``. Rows
are compared without their VOLATILE keys (times, run kind, changes), so an
unchanged fleet rewrites the same report.
"""

from __future__ import annotations

import typing as t

COLUMNS = (
    ("host", "Host"),
    ("status", "Status"),
    ("distro", "Distro"),
    ("kernel", "Kernel"),
    ("gpu", "GPU"),
    ("fabric", "Fabric"),
    ("services", "GPU services"),
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
    ("last_seen", "Last seen"),
    ("failed_step", "Failed step"),
)

# Packages an env's row names with their versions (the rest are counted); torch's CUDA comes from its local tag.
KEY_PACKAGES = ("torch", "torchvision", "torchaudio", "jax", "jaxlib", "tensorflow", "numpy", "cupy", "vllm", "transformers")

# The parts of a row a run can leave unread (a --tags run that skips the stack check, a host not reached):
# the section's name as the row shows it ("stack check from <time>") and the row keys it covers. The
# facts' keys are every key row() reads from ansible_facts.mlhost.
SECTIONS = {
    "facts": ("distro", "kernel", "arch", "gpu", "gpu_count", "gpus", "driver_installed", "driver_loaded",
              "cuda_driver_api", "toolkits", "cuda", "reboot_pending", "reboot_reasons"),
    "envs": ("envs",),
    "stack check": ("checks", "gpu_health"),
}
# Row keys that say when and how the row was made, not what the host is: a row whose other keys are
# those of the stored row is not rewritten (an unchanged rerun changes nothing, time stamps included).
VOLATILE = ("last_seen", "run", "stale", "changed", "phase_times")


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


def torch_cuda(version: t.Any) -> str | None:
    """'2.5.1+cu124' -> '12.4', '2.8.0+cu128' -> '12.8'; None for CPU or unknown builds."""
    local = str(version or "").partition("+")[2]
    if not local.startswith("cu") or not local[2:].isdigit() or len(local) < 4:
        return None
    digits = local[2:]
    return f"{int(digits[:-1])}.{digits[-1]}"


def key_packages(installed: t.Any) -> dict[str, t.Any]:
    """The KEY_PACKAGES of an env's installed map (name -> version; a conda list of names or dicts too)."""
    found: dict[str, t.Any] = {}
    if hasattr(installed, "items"):
        pairs = [(str(k).lower(), v) for k, v in installed.items()]
    else:
        pairs = []
        for item in installed or []:
            if hasattr(item, "get"):
                pairs.append((str(item.get("name") or "").lower(), item.get("version")))
            else:
                name, _sep, version = str(item).partition("=")
                pairs.append((name.lower(), version or None))
    for name, version in pairs:
        if name in KEY_PACKAGES:
            found[name] = None if version is None else str(version)
    return {k: found[k] for k in sorted(found)}


def envs_of(hv: t.Any) -> list[dict[str, t.Any]]:
    envs = []
    for res in _results(_get(hv, "mlhost_python_env_results")):
        if _get(res, "skipped"):
            continue
        item = _get(res, "item", default={}) or {}
        installed = _get(res, "installed", default={}) or {}
        keys = key_packages(installed)
        envs.append({
            "kind": "venv",
            "path": _get(item, "path") or _get(res, "path"),
            "python": _get(res, "python_version"),
            "packages": len(installed),
            "key_packages": keys,
            "torch_cuda": torch_cuda(keys.get("torch")),
            "failed": bool(_get(res, "failed", default=False)),
        })
    for res in _results(_get(hv, "mlhost_conda_env_results")):
        if _get(res, "skipped"):
            continue
        item = _get(res, "item", default={}) or {}
        packages = _get(res, "packages", default=[]) or []
        envs.append({
            "kind": "conda",
            "path": _get(item, "prefix") or _get(item, "name") or _get(res, "prefix") or _get(res, "name"),
            "python": None,
            "packages": len(packages),
            "key_packages": key_packages(packages),
            "torch_cuda": None,
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


def gpus_of(facts: t.Any, health: str | None) -> list[dict[str, t.Any]]:
    """One entry per GPU: nvidia-smi's rows when it answered, else the PCI devices (model by id only)."""
    smi = _get(facts, "nvidia", "smi", default=[]) or []
    out = []
    for gpu in smi or (_get(facts, "gpus", default=[]) or []):
        out.append({
            "index": _get(gpu, "index"),
            "name": _get(gpu, "name"),
            "uuid": _get(gpu, "uuid"),
            "pci": _get(gpu, "pci"),
            "memory_mib": _get(gpu, "memory_total_mib"),
            "compute_cap": _get(gpu, "compute_cap"),
            "health": health,
        })
    return out


# What each phase registers, for the row's "changed" (components whose result says changed) and the tag that runs it.
CHANGED_BY = (
    ("ca_certificates", "mlhost_ca_certificates_result", "build_tools"),
    ("build_tools", "mlhost_build_tools_result", "build_tools"),
    ("nvidia_driver", "mlhost_nvidia_driver_result", "nvidia"),
    ("cuda_toolkit", "mlhost_cuda_toolkit_result", "cuda"),
    ("python_env", "mlhost_python_env_results", "python"),
    ("miniforge", "mlhost_miniforge_result", "conda"),
    ("conda_env", "mlhost_conda_env_results", "conda"),
)


def _is_changed(registered: t.Any) -> bool:
    if not registered or _get(registered, "skipped"):
        return False
    if _get(registered, "changed"):
        return True
    return any(_get(r, "changed") for r in _results(registered))


def changed_of(hv: t.Any) -> list[str]:
    """The components whose registered result says changed (in check mode: would change)."""
    return [name for name, var, _tag in CHANGED_BY if _is_changed(_get(hv, var))]


def phase_times(hv: t.Any) -> dict[str, float]:
    """Seconds per phase from ``mlhost_phase_marks`` ([[phase, epoch seconds], ...]: each phase's start; a mark
    named "" ends the phase before it, as the end of validation and a recorded failure do)."""
    marks = []
    for mark in _get(hv, "mlhost_phase_marks", default=[]) or []:
        try:
            marks.append((str(mark[0]), float(mark[1])))
        except (TypeError, ValueError, IndexError, KeyError):
            continue
    out: dict[str, float] = {}
    for (phase, start), (_next, end) in zip(marks, marks[1:]):
        if phase and end >= start:  # an unnamed mark only ends the phase before it
            out[phase] = round(out.get(phase, 0.0) + end - start, 1)
    return out


def _mask(text: t.Any) -> t.Any:
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import mask_text

    return mask_text(text) if isinstance(text, str) else text


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
    stack_registered = _get(hv, "mlhost_stack_check_result")
    stack = stack_registered or {}
    checks = [{"name": c.get("name"), "status": c.get("status"), "detail": _mask(c.get("detail"))}
              for c in (_get(stack, "checks", default=[]) or []) if c.get("status") != "skipped"]
    health = next((c["status"] for c in checks if c["name"] == "gpu_health"), None)
    installed, loaded = driver_versions(hv, facts, driver)
    state, state_why = driver_state(hv, driver, installed, loaded, failure)
    # The driver module's reboot_required was read before a reload or a reboot: it counts only when neither loaded
    # the driver (the facts and the stack check were read after them).
    driver_reboot = _get(driver, "reboot_required", default=False) and not (installed and installed == loaded)
    reboot = bool(_get(facts, "reboot_required", default=False) or driver_reboot or _get(stack, "reboot_pending", default=False))
    reasons = list(_get(facts, "reboot_reasons", default=[]) or [])
    dkms = _get(facts, "nvidia", "dkms", default={}) or {}

    if failure and _get(failure, "unreachable"):
        status, step, error = "unreachable", "connect", _mask(_get(failure, "msg"))
    elif failure:
        status, step, error = "failed", _get(failure, "step"), _mask(_get(failure, "msg"))
    elif phase == "done":
        status, step, error = "ok", None, None
    elif phase:
        status, step, error = "failed", phase, f"stopped during the {phase} phase (unreachable, or a failure the role did not record)"
    else:
        status, step, error = "not_run", "connect", "the host was not reached (unreachable, or stopped before its facts were read)"
    # What this run did not read (the row keeps the stored values of these: merge()).
    missing = []
    if facts is None:
        missing.append("facts")
    if not _get(hv, "mlhost_validated", default=False) and not envs_of(hv):
        missing.append("envs")
    if stack_registered is None:
        missing.append("stack check")
    return {
        "host": host,
        "status": status,
        "distro": distro,
        "kernel": _get(facts, "kernel"),
        "arch": _get(facts, "arch"),
        "gpu": gpu,
        "gpu_count": gpu_count,
        "gpus": gpus_of(facts, health),
        "gpu_phase": bool(_get(hv, "mlhost_gpu_phase", default=False)),
        "nvswitch_count": _get(facts, "nvidia", "nvswitch_count"),
        "fabric_service": _get(facts, "nvidia", "fabric_service"),
        # The fabric manager / IMEX / DCGM units nvidia_driver installed and enabled with the driver.
        "services": list(_get(driver, "services", default=[]) or []),
        "driver_installed": installed,
        "driver_loaded": loaded,
        "driver_state": state,
        "driver_state_reason": state_why,
        "drained": bool(_get(hv, "mlhost_drained", default=False)),
        "cuda_driver_api": _get(facts, "nvidia", "cuda_driver_api"),
        "toolkits": toolkits,
        "cuda": cuda,
        "envs": envs_of(hv),
        "reboot_pending": reboot,
        "reboot_reasons": reasons,
        # host_facts' nvidia.dkms: ok true/false, null where no DKMS nvidia module of the installed driver is registered.
        "dkms": {"ok": _get(dkms, "ok"), "missing": list(_get(dkms, "missing", default=[]) or []),
                 "default_kernel": _get(dkms, "default_kernel")},
        "reboot_blockers": list(_get(facts, "reboot_blockers", default=[]) or []),
        "checks": checks,
        "gpu_health": health,
        "failed_step": step,
        "error": error,
        "changed": changed_of(hv),
        "phase_times": phase_times(hv),
        "missing": missing,
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


def content(r: dict[str, t.Any]) -> dict[str, t.Any]:
    """What a row says about its host: the row without VOLATILE keys (and without the merge's own keys)."""
    return {k: v for k, v in r.items() if k not in VOLATILE and k not in ("missing", "inventory")}


def merge(new: dict[str, t.Any], old: dict[str, t.Any] | None, now: str, run: str) -> tuple[dict[str, t.Any], bool]:
    """This run's row of a host over its stored row: (the row to keep, whether it differs from the stored one).

    A section this run did not read (``new["missing"]``) keeps the stored row's values and says since when
    (``stale``: section -> the time they were read). A row whose content equals the stored one is the stored
    row itself, its last_seen and run kind included, so an unchanged rerun rewrites nothing.
    """
    merged = {k: v for k, v in new.items() if k != "missing"}
    stale: dict[str, str] = {}
    if old:
        for section in new.get("missing", []):
            keys = SECTIONS[section]
            if any(old.get(k) for k in keys):  # only what was there is worth keeping (and saying since when)
                for key in keys:
                    merged[key] = old.get(key)
                stale[section] = (old.get("stale") or {}).get(section) or old.get("last_seen") or now
        if "stack check" in stale:  # each GPU's health is the kept gpu_health check's
            merged["gpus"] = [dict(g, health=merged.get("gpu_health")) for g in merged.get("gpus") or []]
    if old and content(old) == content(merged):
        return dict(old), False
    merged["last_seen"] = now
    merged["run"] = run
    merged["stale"] = stale
    return merged, True


def summary(report_rows: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {
        "hosts": len(report_rows),
        "ok": sum(1 for r in report_rows if r["status"] == "ok"),
        "failed": [r["host"] for r in report_rows if r["status"] != "ok"],
        "unreachable": [r["host"] for r in report_rows if r["status"] in ("unreachable", "not_run")],
        "reboot_pending": [r["host"] for r in report_rows if r.get("reboot_pending")],
        "reboot_blocked": [r["host"] for r in report_rows if r.get("reboot_blockers")],
        "drained": [r["host"] for r in report_rows if r.get("drained")],
        "gpu_hosts": [r["host"] for r in report_rows if r.get("gpu_count") or r.get("gpu_phase")],
        "gpus": sum(int(r.get("gpu_count") or 0) for r in report_rows),
        "stale": [r["host"] for r in report_rows if r.get("stale")],
        "not_in_inventory": [r["host"] for r in report_rows if r.get("inventory") is False],
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


def _env_text(e: dict[str, t.Any]) -> str:
    extra = []
    if e.get("python"):
        extra.append(f"py {e['python']}")
    torch = (e.get("key_packages") or {}).get("torch")
    if torch:
        extra.append(f"torch {torch}" + (f" CUDA {e['torch_cuda']}" if e.get("torch_cuda") else ""))
    if e.get("failed"):
        extra.append("failed")
    return f"{e.get('path')}" + (f" ({', '.join(extra)})" if extra else "")


def cell(r: dict[str, t.Any], key: str) -> str:
    """A row's value as table text (Markdown, the run's closing lines and the HTML share it)."""
    value = r.get(key)
    if key == "gpu":
        return f"{r.get('gpu_count')} x {value}" if value else "-"
    if key == "fabric":
        return fabric_cell(r.get("nvswitch_count"), r.get("fabric_service"))
    if key == "envs":
        return ", ".join(_env_text(e) for e in value or []) or "-"
    if key == "checks":
        return ", ".join(f"{c['name']}: {c['status']}" for c in value or []) or "-"
    if key == "cuda":
        parts = []
        if r.get("cuda_driver_api"):
            parts.append(f"driver {r['cuda_driver_api']}")
        if value:
            parts.append(f"toolkit {value}")
        return ", ".join(parts) or "-"
    if key in ("reboot_pending", "drained"):
        return "yes" if value else "no"
    if key == "dkms":
        if not isinstance(value, dict) or value.get("ok") is None:
            return "-"
        return "ok" if value["ok"] else f"missing for {', '.join(value.get('missing') or [])}"
    if key == "reboot_blockers":
        return "; ".join(value or []) or "-"
    if key == "driver_state":
        return "-" if not value else value.replace("_", " ") + (f": {r['driver_state_reason']}" if r.get("driver_state_reason") else "")
    if key == "failed_step":
        return f"{value}: {r.get('error')}" if value else "-"
    if key == "last_seen":
        return f"{value} ({r.get('run')})" if value else "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return "-" if value in (None, "") else str(value)


# Row keys the pages show in their own places; any other key (added by a later field) is listed generically.
SHOWN = {k for k, _title in COLUMNS} | {
    "gpu_count", "gpus", "gpu_phase", "toolkits", "cuda_driver_api", "error", "reboot_reasons", "gpu_health", "run",
    "stale", "changed", "phase_times", "inventory", "arch", "driver_state_reason", "missing",
    "nvswitch_count", "fabric_service"}


def extras(r: dict[str, t.Any]) -> list[tuple[str, str]]:
    """The row's other fields as (key, text), sorted: absent ones are simply not there."""
    return [(k, cell(r, k)) for k in sorted(r) if k not in SHOWN]


def report(hostvars: t.Any, hosts: t.Iterable[str], stored: dict[str, dict[str, t.Any]] | None = None,
           now: str = "", run: str = "full", inventory: t.Iterable[str] | None = None) -> dict[str, t.Any]:
    """The report: this run's rows merged over the stored rows of every host (``stored``: host -> row).

    Without ``stored`` it is this run's rows alone (the filter). ``changed_hosts`` names the rows that differ
    from the stored ones (to be written back).
    """
    stored = dict(stored or {})
    merged: dict[str, dict[str, t.Any]] = dict(stored)
    changed_hosts = []
    for new in rows(hostvars, hosts):
        if stored or now:
            kept, differs_ = merge(new, stored.get(new["host"]), now, run)
        else:
            kept, differs_ = {k: v for k, v in new.items() if k != "missing"}, True
        merged[new["host"]] = kept
        if differs_:
            changed_hosts.append(new["host"])
    known = set(inventory) if inventory is not None else None
    report_rows = []
    for host in sorted(merged):
        r = dict(merged[host])
        if known is not None and host not in known:
            r["inventory"] = False
        report_rows.append(r)
    return {
        "columns": [{"key": k, "title": title} for k, title in COLUMNS],
        "rows": report_rows,
        "table": [[cell(r, k) for k, _title in COLUMNS] for r in report_rows],
        "extras": [extras(r) for r in report_rows],
        "summary": summary(report_rows),
        "changed_hosts": changed_hosts,
        "run": run,
        "last_change": max((str(r.get("last_seen")) for r in report_rows if r.get("last_seen")), default=None),
    }


# The report's files, in the order they are written: the JSON first (what tools read), then the pages.
FILES = ("fleet-report.json", "fleet-report.md", "fleet-report.html")


def render_files(the_report: dict[str, t.Any], templates: dict[str, str], about: dict[str, t.Any] | None = None) -> dict[str, str]:
    """The three files' text: the JSON from the report, the Markdown and HTML pages from their templates.

    ``templates`` maps ``md`` and ``html`` to the Jinja2 text of roles/ml_host/templates/fleet-report.*.j2;
    they are rendered as ansible-core's template module renders them (trim_blocks, no autoescape: the HTML
    template escapes every cell itself), with the report as ``mlhost_fleet_report``. ``about`` (versions,
    the newest row's time) goes into all three; it holds no time of its own, so an unchanged fleet gives
    the same files.
    """
    import json

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    about = dict(about or {})
    about.setdefault("last_change", the_report.get("last_change"))
    the_report = dict(the_report, about=about)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["tojson_html"] = lambda v: json.dumps(v, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    out = {FILES[0]: json.dumps({"about": about, "summary": the_report["summary"], "hosts": the_report["rows"]},
                                indent=2, sort_keys=True) + "\n"}
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
