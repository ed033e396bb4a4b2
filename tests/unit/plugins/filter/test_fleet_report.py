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
                                 "reboot_pending": ["gpu-1"], "drained": [], "gpu_hosts": ["gpu-1"], "gpus": 8,
                                 "stale": [], "not_in_inventory": []}


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
    assert report["table"] == [["cpu-1", "ok", "Debian GNU/Linux 12 (bookworm)", "-", "-", "-", "-", "-",
                                "/opt/mlhost/venvs/default (py 3.11.2)", "no", "python: ok", "-", "-"]]
    assert [c["key"] for c in report["columns"]][:3] == ["host", "status", "distro"]


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
