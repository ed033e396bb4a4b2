# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report filter: rows from hostvars, failed and unreached hosts included, and its templates."""

from __future__ import annotations

import json
import pathlib

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.filter.fleet_report import FilterModule
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _fleet_report

ROOT = pathlib.Path(__file__).resolve().parents[4]
fleet_report = FilterModule().filters()["fleet_report"]


def facts(distro="Debian GNU/Linux 12 (bookworm)", gpus=(), installed=None, loaded=None, toolkits=(), reboot=False, reasons=()):
    return {"mlhost": {
        "distro": {"id": "debian", "version": "12", "name": distro},
        "gpus": [{"name": g} for g in gpus],
        "nvidia": {"installed_version": installed, "loaded_version": loaded, "smi": []},
        "cuda_toolkits": [{"version": v} for v in toolkits],
        "reboot_required": reboot,
        "reboot_reasons": list(reasons),
    }}


def env_results(*paths, failed=()):
    return {"results": [
        {"item": {"path": p}, "python_version": "3.11.2", "installed": {"numpy": "2.3.5"}, "failed": p in failed}
        for p in paths
    ]}


HOSTVARS = {
    "cpu-1": {
        "ansible_facts": facts(),
        "mlhost_phase": "done",
        "mlhost_gpu_phase": False,
        "mlhost_python_env_results": env_results("/opt/mlhost/venvs/default"),
        "mlhost_stack_check_result": {"checks": [
            {"name": "nvidia_smi", "status": "skipped", "detail": "No NVIDIA GPU or driver on this host."},
            {"name": "python", "status": "ok", "detail": "runs"},
        ], "reboot_pending": False},
    },
    "gpu-1": {
        "ansible_facts": facts("Debian GNU/Linux 13 (trixie)", gpus=["NVIDIA H100 SXM5 80GB"] * 8, installed="550.163.01",
                               toolkits=["12.4"], reboot=True, reasons=["nvidia driver 550.163.01 installed, not loaded"]),
        "mlhost_phase": "done",
        "mlhost_gpu_phase": True,
        "mlhost_nvidia_driver_result": {"installed_version": "550.163.01", "loaded_version": None, "reboot_required": True},
        "mlhost_cuda_toolkit_result": {"version": "12.4.131"},
        "mlhost_python_env_results": {"skipped": True, "results": []},
        "mlhost_stack_check_result": {"checks": [{"name": "nvidia_smi", "status": "reboot_pending", "detail": "..."}],
                                      "reboot_pending": True},
    },
    "bad-1": {
        "ansible_facts": facts(),
        "mlhost_phase": "python",
        "mlhost_failure": {"step": "python", "task": "Create or update Python environments",
                           "msg": "No matching distribution found for mlhost-no-such-package-xyz"},
        "mlhost_python_env_results": env_results("/opt/mlhost/venvs/default", failed=("/opt/mlhost/venvs/default",)),
    },
    "lost-1": {"mlhost_phase": "nvidia"},
    "gone-1": {},
}


def test_one_row_per_host_sorted_with_status_and_failed_step():
    report = fleet_report(HOSTVARS, ["gpu-1", "cpu-1", "bad-1", "lost-1", "gone-1", "cpu-1"])
    rows = {r["host"]: r for r in report["rows"]}
    assert [r["host"] for r in report["rows"]] == ["bad-1", "cpu-1", "gone-1", "gpu-1", "lost-1"]
    assert rows["cpu-1"]["status"] == "ok" and rows["cpu-1"]["failed_step"] is None
    assert rows["bad-1"]["status"] == "failed" and rows["bad-1"]["failed_step"] == "python"
    assert "mlhost-no-such-package-xyz" in rows["bad-1"]["error"]
    assert rows["lost-1"]["status"] == "failed" and rows["lost-1"]["failed_step"] == "nvidia"
    assert rows["gone-1"]["status"] == "not_run" and rows["gone-1"]["failed_step"] == "connect"
    assert report["summary"] == {"hosts": 5, "ok": 2, "failed": ["bad-1", "gone-1", "lost-1"],
                                 "reboot_pending": ["gpu-1"], "reboot_blocked": [], "drained": [], "gpu_hosts": ["gpu-1"]}


def test_gpu_row_prefers_the_roles_results_over_the_facts():
    row = _fleet_report.row("gpu-1", HOSTVARS["gpu-1"])
    assert row["gpu"] == "NVIDIA H100 SXM5 80GB" and row["gpu_count"] == 8
    assert (row["driver_installed"], row["driver_loaded"], row["cuda"]) == ("550.163.01", None, "12.4.131")
    assert row["reboot_pending"] is True and row["reboot_reasons"] == ["nvidia driver 550.163.01 installed, not loaded"]
    assert row["envs"] == [] and row["checks"] == [{"name": "nvidia_smi", "status": "reboot_pending", "detail": "..."}]


def test_a_driver_phase_skipped_on_an_unchanged_plan_reports_the_plan():
    # ml_host skips the driver phase when the validate phase's plan changes nothing; the plan is the result.
    hv = dict(HOSTVARS["gpu-1"])
    hv["mlhost_nvidia_driver_plan"] = hv.pop("mlhost_nvidia_driver_result")
    hv["ansible_facts"] = facts(gpus=["NVIDIA H100 SXM5 80GB"])  # the facts alone say no driver, no reboot
    row = _fleet_report.row("gpu-1", hv)
    assert (row["driver_installed"], row["reboot_pending"]) == ("550.163.01", True)
    hv["mlhost_nvidia_driver_result"] = {"installed_version": "550.163.02", "reboot_required": True}
    assert _fleet_report.row("gpu-1", hv)["driver_installed"] == "550.163.02"  # a real run's result wins


def test_cpu_row_and_its_table_cells():
    report = fleet_report(HOSTVARS, ["cpu-1"])
    row = report["rows"][0]
    assert row["envs"] == [{"kind": "venv", "path": "/opt/mlhost/venvs/default", "python": "3.11.2", "packages": 1, "failed": False}]
    assert row["checks"] == [{"name": "python", "status": "ok", "detail": "runs"}]  # skipped checks are left out
    assert report["table"] == [["cpu-1", "ok", "Debian GNU/Linux 12 (bookworm)", "-", "-", "-", "-", "-", "-",
                                "/opt/mlhost/venvs/default", "no", "-", "-", "no", "python: ok", "-"]]
    assert [c["key"] for c in report["columns"]][:3] == ["host", "status", "distro"]


def test_dkms_and_reboot_blockers_per_host_from_host_facts():
    """nvidia.dkms (ok, missing) and reboot_blockers, as host_facts reports them before any reboot decision."""
    blocker = ("the nvidia DKMS module 550.163.01 is not installed for kernel 6.12.57+deb13-amd64 (the default boot kernel): "
               "a reboot would come up without the driver")
    hv = dict(HOSTVARS["gpu-1"])
    hv["ansible_facts"] = {"mlhost": dict(HOSTVARS["gpu-1"]["ansible_facts"]["mlhost"], reboot_blockers=[blocker])}
    hv["ansible_facts"]["mlhost"]["nvidia"] = dict(hv["ansible_facts"]["mlhost"]["nvidia"], dkms={
        "ok": False, "missing": ["6.12.57+deb13-amd64"], "default_kernel": "6.12.57+deb13-amd64"})
    ok = dict(HOSTVARS["gpu-1"])
    ok["ansible_facts"] = {"mlhost": dict(HOSTVARS["gpu-1"]["ansible_facts"]["mlhost"])}
    ok["ansible_facts"]["mlhost"]["nvidia"] = dict(ok["ansible_facts"]["mlhost"]["nvidia"], dkms={"ok": True, "missing": []})
    report = fleet_report({"gpu-1": hv, "gpu-2": ok, "cpu-1": HOSTVARS["cpu-1"]}, ["gpu-1", "gpu-2", "cpu-1"])
    keys = [c["key"] for c in report["columns"]]
    cells = {r[0]: dict(zip(keys, r)) for r in report["table"]}
    assert cells["gpu-1"]["dkms"] == "missing for 6.12.57+deb13-amd64" and cells["gpu-1"]["reboot_blockers"] == blocker
    assert cells["gpu-2"]["dkms"] == "ok" and cells["gpu-2"]["reboot_blockers"] == "-"
    assert cells["cpu-1"]["dkms"] == "-"  # no DKMS module of a driver: nothing to say
    assert report["summary"]["reboot_blocked"] == ["gpu-1"]
    templates = {k: (ROOT / "roles/ml_host/templates" / f"fleet-report.{k}.j2").read_text() for k in ("md", "html")}
    files = _fleet_report.render_files(report, templates)
    assert "reboot blocked (the default boot kernel lacks the driver's DKMS module): gpu-1," in files["fleet-report.md"]
    assert "| DKMS module | Reboot blockers |" in files["fleet-report.md"] and "missing for 6.12.57+deb13-amd64" in files["fleet-report.html"]


def test_conda_envs_are_listed_beside_venvs():
    hv = dict(HOSTVARS["cpu-1"], mlhost_conda_env_results={"results": [
        {"item": {"name": "train"}, "packages": ["python", "numpy"]}, {"skipped": True, "item": {"name": "off"}}]})
    envs = _fleet_report.row("cpu-1", hv)["envs"]
    assert [(e["kind"], e["path"], e["packages"]) for e in envs] == [("venv", "/opt/mlhost/venvs/default", 1), ("conda", "train", 2)]


def test_the_report_is_the_same_for_the_same_fleet():
    first = json.dumps(fleet_report(HOSTVARS, list(HOSTVARS)), sort_keys=True)
    assert first == json.dumps(fleet_report(HOSTVARS, list(reversed(list(HOSTVARS)))), sort_keys=True)


def test_a_string_of_hosts_is_refused():
    with pytest.raises(AnsibleFilterError, match="hosts must be a list"):
        fleet_report(HOSTVARS, "cpu-1")


@pytest.mark.parametrize("name", ["md", "html"])
def test_templates_render_every_row(name):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT / "roles" / "ml_host" / "templates")),
                             autoescape=False, trim_blocks=True)
    text = env.get_template(f"fleet-report.{name}.j2").render(mlhost_fleet_report=fleet_report(HOSTVARS, list(HOSTVARS)))
    for host in HOSTVARS:
        assert host in text
    assert "python: No matching distribution found for mlhost-no-such-package-xyz" in text
    if name == "md":
        lines = [line for line in text.splitlines() if line.startswith("|")]
        assert len(lines) == 2 + len(HOSTVARS)
        assert len({line.count(" | ") for line in lines[2:]}) == 1
    else:
        assert text.count('<tr class="failed') == 2 and text.count('<tr class="not_run') == 1 and '<tr class="ok reboot">' in text


@pytest.mark.parametrize("nvidia, text", [
    ({"nvswitch_count": 4, "fabric_service": "fabric_manager"}, "4 NVSwitch, fabric_manager"),
    ({"nvswitch_count": 0, "fabric_service": "fabric_manager_nvlsm"}, "fabric_manager_nvlsm"),  # HGX B200
    ({"nvswitch_count": 0, "fabric_service": "imex"}, "imex"),  # GB200
    ({"nvswitch_count": 0, "fabric_service": "none"}, "-"),  # PCIe cards
    ({}, "-"),  # facts from before the fabric facts
    ({"nvswitch_count": "4", "fabric_service": ["x"]}, "-"),  # not what host_facts writes
])
def test_the_fabric_column(nvidia, text):
    hv = dict(HOSTVARS["gpu-1"])
    hv["ansible_facts"] = {"mlhost": dict(hv["ansible_facts"]["mlhost"], nvidia=dict(hv["ansible_facts"]["mlhost"]["nvidia"], **nvidia))}
    report = fleet_report({"gpu-1": hv}, ["gpu-1"])
    row = report["rows"][0]
    assert (row["nvswitch_count"], row["fabric_service"]) == (nvidia.get("nvswitch_count"), nvidia.get("fabric_service"))
    keys = [c["key"] for c in report["columns"]]
    assert report["table"][0][keys.index("fabric")] == text
    assert [c["title"] for c in report["columns"]][keys.index("fabric")] == "Fabric"


# Rolling upgrades: the driver's state, drained, reboot blockers. The hostvars are shaped as the roles leave them:
# mlhost_nvidia_driver_result (nvidia_driver), mlhost_nvidia_reload_result (nvidia_reload, or skipped),
# mlhost_nvidia_reboot_result (ansible.builtin.reboot), mlhost_drained (ml_host drain.yml), mlhost_failure.
OLD, NEW = "535.261.03", "550.163.01"


def gpu_host(**extra):
    hv = {
        "ansible_facts": facts(gpus=["NVIDIA H100 80GB HBM3"] * 8, installed=NEW, loaded=NEW),
        "mlhost_phase": "done",
        "mlhost_gpu_phase": True,
        "mlhost_nvidia_driver_result": {"changed": True, "installed_version": NEW, "loaded_version": OLD, "reboot_required": True,
                                        "reboot_reasons": [f"nvidia driver {NEW} installed, {OLD} loaded"]},
        "mlhost_nvidia_reload_result": {"skipped": True},
        "mlhost_nvidia_reboot_result": {"skipped": True},
    }
    hv.update(extra)
    return hv


def one(hv):
    report = fleet_report({"g": hv}, ["g"])
    columns = [c["key"] for c in report["columns"]]
    return report["rows"][0], dict(zip(columns, report["table"][0])), report["summary"]


def test_a_driver_reloaded_without_a_reboot_is_upgraded_and_not_pending():
    row, cells, summary = one(gpu_host(mlhost_nvidia_reload_result={"changed": True, "state": "reloaded", "reloaded": True,
                                                                    "reboot_required": False, "loaded_version": NEW, "reasons": []}))
    assert (row["driver_state"], row["driver_loaded"], row["reboot_pending"]) == ("upgraded", NEW, False)
    assert cells["driver_state"] == "upgraded: reloaded without a reboot" and cells["reboot_pending"] == "no"
    assert summary["reboot_pending"] == [] and summary["drained"] == []


def test_a_driver_held_by_a_job_is_reboot_pending_with_the_holder_and_the_host_drained():
    why = "pid 4711 (python3) has /dev/nvidia0 open; it is not stopped by this module"
    hv = gpu_host(ansible_facts=facts(gpus=["NVIDIA H100 80GB HBM3"], installed=NEW, loaded=OLD, reboot=True,
                                      reasons=[f"nvidia driver {NEW} installed, {OLD} loaded"]),
                  mlhost_nvidia_reload_result={"changed": False, "state": "reboot_required", "reloaded": False,
                                               "reboot_required": True, "loaded_version": OLD, "reasons": [why]},
                  mlhost_drained=True)
    row, cells, summary = one(hv)
    assert (row["driver_state"], row["driver_state_reason"], row["reboot_pending"], row["drained"]) == ("reboot_pending", why, True, True)
    assert cells["driver_state"] == f"reboot pending: {why}" and cells["drained"] == "yes"
    assert summary["drained"] == ["g"] and summary["reboot_pending"] == ["g"]


def test_a_rebooted_host_reads_its_loaded_driver_from_the_facts_read_after_the_reboot():
    row, cells, _summary = one(gpu_host(mlhost_nvidia_reboot_result={"changed": True, "rebooted": True, "elapsed": 95}))
    assert (row["driver_state"], row["driver_loaded"], row["reboot_pending"]) == ("upgraded", NEW, False)
    assert cells["driver_state"] == "upgraded: rebooted"


def test_an_unchanged_driver_and_a_cpu_host():
    row, _cells, _summary = one(gpu_host(mlhost_nvidia_driver_result={"changed": False, "installed_version": NEW,
                                                                      "loaded_version": NEW, "reboot_required": False}))
    assert row["driver_state"] == "unchanged" and not row["reboot_pending"]
    row, cells, _summary = one(HOSTVARS["cpu-1"])
    assert row["driver_state"] is None and cells["driver_state"] == "-" and row["drained"] is False


def test_a_failed_nvidia_step_is_a_failed_driver_and_a_failed_verify_stays_drained():
    failure = {"step": "nvidia", "task": "Load the new driver without a reboot where nothing else holds the GPU",
               "msg": f"The nvidia driver was reloaded but {OLD} is loaded, not the installed {NEW}."}
    row, cells, _summary = one(gpu_host(mlhost_phase="nvidia", mlhost_failure=failure, mlhost_drained=True))
    assert (row["status"], row["driver_state"], row["drained"]) == ("failed", "failed", True)
    assert cells["driver_state"].startswith(f"failed: The nvidia driver was reloaded but {OLD}")
    failure = {"step": "verify", "task": "Check the stack end to end", "msg": "Stack check failed - gpu_health: ecc"}
    hv = gpu_host(mlhost_phase="verify", mlhost_failure=failure, mlhost_drained=True,
                  mlhost_nvidia_reload_result={"state": "reloaded", "reloaded": True, "loaded_version": NEW, "reasons": []})
    row, cells, _summary = one(hv)
    assert (row["status"], row["failed_step"], row["driver_state"], cells["drained"]) == ("failed", "verify", "upgraded", "yes")


def test_reboot_blockers_are_in_the_row_and_the_reboot_cell():
    blocker = ("the nvidia DKMS module 550.163.01 is not installed for kernel 6.1.0-28-amd64 (the default boot kernel): "
               "a reboot would come up without the driver")
    hv = gpu_host(ansible_facts=dict(facts(gpus=["NVIDIA A100-SXM4-80GB"], installed=NEW, loaded=OLD, reboot=True),
                                     mlhost=dict(facts(gpus=["NVIDIA A100-SXM4-80GB"], installed=NEW, loaded=OLD, reboot=True)["mlhost"],
                                                 reboot_blockers=[blocker])))
    row, cells, _summary = one(hv)
    assert row["reboot_blockers"] == [blocker] and row["driver_state"] == "reboot_pending"
    assert cells["reboot_pending"] == "yes" and cells["reboot_blockers"] == blocker
