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
    assert report["summary"] == {"hosts": 5, "ok": 2, "failed": ["bad-1", "gone-1", "lost-1"], "unreachable": ["gone-1"],
                                 "reboot_pending": ["gpu-1"], "reboot_blocked": [], "drained": [], "gpu_hosts": ["gpu-1"],
                                 "gpus": 8, "stale": [], "not_in_inventory": []}


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
    assert row["envs"] == [{"kind": "venv", "path": "/opt/mlhost/venvs/default", "python": "3.11.2", "packages": 1,
                            "key_packages": {"numpy": "2.3.5"}, "torch_cuda": None, "failed": False}]
    assert row["checks"] == [{"name": "python", "status": "ok", "detail": "runs"}]  # skipped checks are left out
    assert report["table"] == [["cpu-1", "ok", "Debian GNU/Linux 12 (bookworm)", "-", "-", "-", "-", "-", "-", "-", "-",
                                "/opt/mlhost/venvs/default (py 3.11.2)", "no", "-", "-", "no", "python: ok", "-", "-"]]
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
        assert text.count('<tr class="host failed"') == 2 and text.count('<tr class="host not_run"') == 1
        assert 'data-host="gpu-1" data-status="ok" data-reboot="yes"' in text
        assert "<script" in text and "http://" not in text.split("<script", 1)[1] and "src=" not in text


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


@pytest.mark.parametrize("version, cuda", [
    ("2.5.1+cu124", "12.4"), ("2.8.0+cu128", "12.8"), ("2.4.0+cu118", "11.8"), ("1.13.1+cu117", "11.7"),
    ("1.4.0+cu92", "9.2"), ("2.5.1+cpu", None), ("2.3.0+rocm6.0", None), ("2.5.1", None), (None, None), ("2.5.1+cuXYZ", None),
])
def test_torch_cuda_from_the_wheels_local_tag(version, cuda):
    assert _fleet_report.torch_cuda(version) == cuda


def test_gpu_details_env_key_packages_phase_times_and_changes():
    hv = dict(HOSTVARS["gpu-1"])
    hv["ansible_facts"] = facts(gpus=["NVIDIA H100 SXM5 80GB"] * 2, installed="550.163.01", loaded="550.163.01")
    hv["ansible_facts"]["mlhost"]["kernel"] = "6.1.0-28-amd64"
    hv["ansible_facts"]["mlhost"]["nvidia"]["cuda_driver_api"] = "12.4"
    # nvidia-smi's rows as host_facts parses them (parse_smi_csv): index, name, uuid, pci, memory_total_mib, compute_cap
    hv["ansible_facts"]["mlhost"]["nvidia"]["smi"] = [
        {"index": n, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-4a5f0e2c-1b7d-3e9f-8c6a-0d2b4f6e8a1{n}",
         "pci": f"0000:{0x18 + n:02x}:00.0", "memory_total_mib": 81559, "compute_cap": "9.0"} for n in range(2)]
    hv["mlhost_stack_check_result"] = {"checks": [{"name": "gpu_health", "status": "ok", "detail": "ECC ok"}]}
    hv["mlhost_python_env_results"] = {"changed": True, "results": [
        {"item": {"path": "/opt/train"}, "python_version": "3.11.2", "changed": True,
         "installed": {"torch": "2.5.1+cu124", "Numpy": "2.1.3", "six": "1.17.0"}}]}
    hv["mlhost_phase_marks"] = [["facts", 10.0], ["validate", 12.25], ["", 15.0], ["python", 20.0], ["done", 80.06]]
    row = _fleet_report.row("gpu-1", hv)
    assert [(g["uuid"][-2:], g["memory_mib"], g["compute_cap"], g["health"]) for g in row["gpus"]] == [
        ("10", 81559, "9.0", "ok"), ("11", 81559, "9.0", "ok")]
    assert row["envs"][0]["key_packages"] == {"numpy": "2.1.3", "torch": "2.5.1+cu124"} and row["envs"][0]["torch_cuda"] == "12.4"
    assert row["phase_times"] == {"facts": 2.2, "validate": 2.8, "python": 60.1}  # the "" mark ends a phase, counts none
    assert row["changed"] == ["python_env"] and row["kernel"] == "6.1.0-28-amd64"
    assert _fleet_report.cell(row, "cuda") == "driver 12.4, toolkit 12.4.131"
    assert _fleet_report.cell(row, "envs") == "/opt/train (py 3.11.2, torch 2.5.1+cu124 CUDA 12.4)"


def test_messages_are_masked_and_unreachable_hosts_named():
    hv = {"mlhost_phase": "facts", "mlhost_failure": {
        "step": "facts", "unreachable": True,
        "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.5 port 22: No route to host"}}
    row = _fleet_report.row("far-1", hv)
    assert (row["status"], row["failed_step"]) == ("unreachable", "connect") and row["error"].endswith("No route to host")
    hv = {"mlhost_phase": "python", "mlhost_failure": {
        "step": "python", "msg": "pip: 401 from https://ci:t0ken@pypi.example/simple?sig=abc PIP_PASSWORD=hunter2"}}
    error = _fleet_report.row("bad-1", hv)["error"]
    assert "t0ken" not in error and "sig=abc" not in error and "hunter2" not in error and "https://***@pypi.example" in error


def test_fields_added_later_render_generically_and_drained_is_counted():
    report = fleet_report({"gpu-1": dict(HOSTVARS["gpu-1"])}, ["gpu-1"])
    r = dict(report["rows"][0], drained=True, imex_domain="rack-7", fabricmanager_state={"active": True}, later=[])
    # drained, the fabric and the DKMS fields have columns; a field a later version adds is listed generically
    assert _fleet_report.extras(r) == [("fabricmanager_state", "active: True"), ("imex_domain", "rack-7"), ("later", "-")]
    assert _fleet_report.summary([r])["drained"] == ["gpu-1"]


def test_merge_keeps_what_the_run_did_not_read_and_compares_without_times():
    old_hv = dict(HOSTVARS["cpu-1"], mlhost_validated=True)
    first, changed = _fleet_report.merge(_fleet_report.row("cpu-1", old_hv), None, "2026-12-01T10:00:00Z", "full")
    assert changed and first["last_seen"] == "2026-12-01T10:00:00Z" and first["stale"] == {}
    tagged = {k: v for k, v in old_hv.items() if k != "mlhost_stack_check_result"}
    same, changed = _fleet_report.merge(_fleet_report.row("cpu-1", tagged), first, "2026-12-02T10:00:00Z", "tags python")
    assert not changed and same == first  # nothing new: the stored row itself, its time included
    tagged["mlhost_phase_marks"] = [["python", 1.0], ["done", 9.0]]  # other times and changes alone are no change
    assert not _fleet_report.merge(_fleet_report.row("cpu-1", tagged), first, "2026-12-02T10:00:00Z", "tags python")[1]
    tagged["ansible_facts"] = facts(distro="Debian GNU/Linux 12 (bookworm)", reboot=True, reasons=["the package manager asks"])
    newer, changed = _fleet_report.merge(_fleet_report.row("cpu-1", tagged), first, "2026-12-03T10:00:00Z", "tags python")
    assert changed and newer["checks"] == first["checks"] and newer["stale"] == {"stack check": "2026-12-01T10:00:00Z"}
    assert newer["reboot_pending"] is True and newer["run"] == "tags python" and newer["last_seen"] == "2026-12-03T10:00:00Z"
    gone, changed = _fleet_report.merge(_fleet_report.row("cpu-1", {}), newer, "2026-12-04T10:00:00Z", "full")
    assert changed and gone["status"] == "not_run" and gone["distro"] == newer["distro"] and gone["envs"] == newer["envs"]
    assert gone["stale"] == {"facts": "2026-12-03T10:00:00Z", "envs": "2026-12-03T10:00:00Z",
                             "stack check": "2026-12-01T10:00:00Z"}


def test_a_tags_run_keeps_each_gpus_health_from_the_kept_stack_check():
    hv = dict(HOSTVARS["gpu-1"], mlhost_validated=True)
    hv["ansible_facts"] = facts(gpus=["NVIDIA H100 SXM5 80GB"], installed="550.163.01", loaded="550.163.01")
    hv["mlhost_stack_check_result"] = {"checks": [{"name": "gpu_health", "status": "ok", "detail": "ECC ok"}]}
    first, _changed = _fleet_report.merge(_fleet_report.row("gpu-1", hv), None, "2026-12-01T10:00:00Z", "full")
    assert [g["health"] for g in first["gpus"]] == ["ok"]
    tagged = {k: v for k, v in hv.items() if k != "mlhost_stack_check_result"}
    kept, changed = _fleet_report.merge(_fleet_report.row("gpu-1", tagged), first, "2026-12-02T10:00:00Z", "tags python")
    assert not changed and kept == first


def test_the_gpu_services_the_driver_installed_are_a_column():
    hv = dict(HOSTVARS["gpu-1"])
    hv["mlhost_nvidia_driver_result"] = dict(hv["mlhost_nvidia_driver_result"], fabric_service="fabric_manager",
                                             services=["nvidia-fabricmanager.service", "nvidia-dcgm.service"])
    report = fleet_report({"gpu-1": hv}, ["gpu-1"])
    keys = [c["key"] for c in report["columns"]]
    assert report["rows"][0]["services"] == ["nvidia-fabricmanager.service", "nvidia-dcgm.service"]
    assert report["table"][0][keys.index("services")] == "nvidia-fabricmanager.service, nvidia-dcgm.service"
    hv["mlhost_nvidia_driver_result"] = {k: v for k, v in hv["mlhost_nvidia_driver_result"].items() if k != "services"}
    assert fleet_report({"gpu-1": hv}, ["gpu-1"])["table"][0][keys.index("services")] == "-"
