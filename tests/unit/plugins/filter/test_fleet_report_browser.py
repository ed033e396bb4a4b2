# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report's HTML page in a real browser: headless Chromium (Debian's package) renders a 300-host report
and the test reads the DOM it dumped after the page's own script ran: the rows, the summary counts, a filter and a
sort applied from the URL's fragment, and no request to anything outside the file.

The 300 hosts are GENERATED here (a stand-in fleet, no capture): shaped like what host_facts and the role record on
real machines - nvidia-smi's query fields (name "NVIDIA H100 80GB HBM3", uuid "GPU-<8-4-4-4-12 hex>", memory.total
81559 MiB, compute_cap 9.0), Debian's kernel releases, driver 550.163.01, torch 2.5.1+cu124 - with a hostile error
text (markup, an ampersand, a credential in a URL) on the failed hosts.

scripts/test.sh installs Debian's chromium for the unit stage when it is missing and the suite runs as root, and then
sets MLHOST_BROWSER_REQUIRED=1: without a browser this test fails there instead of skipping.
"""

from __future__ import annotations

import html.parser
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _fleet_report

ROOT = pathlib.Path(__file__).resolve().parents[4]
HOSTS = 300
FAILED = {f"gpu-{i:03d}" for i in range(0, HOSTS, 37)}       # 9 hosts failed in the python step
UNREACHABLE = {f"gpu-{i:03d}" for i in (5, 150, 299)}         # 3 hosts Ansible could not reach
REBOOT = {f"gpu-{i:03d}" for i in range(3, HOSTS, 50)}        # 6 hosts with a driver installed, not loaded


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def gpu(host: int, index: int) -> dict:
    return {"index": index, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{uuid.UUID(int=host * 16 + index)}",
            "pci": f"0000:{0x18 + index * 0x10:02x}:00.0", "memory_total_mib": 81559, "driver_version": "550.163.01",
            "persistence_mode": True, "compute_cap": "9.0"}


def hostvars_of(i: int) -> dict:
    name = f"gpu-{i:03d}"
    if name in UNREACHABLE:
        return {"mlhost_phase": "facts", "mlhost_failure": {
            "step": "facts", "task": "Fail the unreachable host, with what Ansible said", "unreachable": True,
            "msg": f"Failed to connect to the host via ssh: ssh: connect to host 10.0.{i // 256}.{i % 256} port 22: No route to host"}}
    loaded = None if name in REBOOT else "550.163.01"
    hv = {
        "ansible_facts": {"mlhost": {
            "distro": {"id": "debian", "version": "12" if i % 2 else "13",
                       "name": "Debian GNU/Linux 12 (bookworm)" if i % 2 else "Debian GNU/Linux 13 (trixie)"},
            "kernel": "6.1.0-28-amd64" if i % 2 else "6.12.57+deb13-amd64", "arch": "x86_64",
            "gpus": [{"name": "NVIDIA Corporation GH100 [H100 SXM5 80GB]", "pci": f"0000:{0x18 + n * 0x10:02x}:00.0"} for n in range(8)],
            "nvidia": {"installed_version": "550.163.01", "loaded_version": loaded, "cuda_driver_api": "12.4",
                       "smi": [gpu(i, n) for n in range(8)] if loaded else []},
            "cuda_toolkits": [{"version": "12.4"}], "reboot_required": not loaded,
            "reboot_reasons": [] if loaded else ["nvidia driver 550.163.01 installed, not loaded"]}},
        "mlhost_phase": "done", "mlhost_gpu_phase": True, "mlhost_validated": True,
        "mlhost_python_env_results": {"results": [{
            "item": {"path": "/opt/mlhost/venvs/train"}, "python_version": "3.11.2",
            "installed": {"torch": "2.5.1+cu124", "numpy": "2.1.3", "six": "1.17.0"}}]},
        "mlhost_stack_check_result": {"checks": [
            {"name": "nvidia_smi", "status": "ok" if loaded else "reboot_pending", "detail": "8 GPUs"},
            {"name": "gpu_health", "status": "ok" if loaded else "reboot_pending", "detail": "ECC, remapped rows, PCIe x16"}]},
        "mlhost_phase_marks": [["facts", 100.0], ["validate", 103.5], ["", 110.0], ["python", 200.0], ["done", 262.5]],
    }
    if name in FAILED:
        hv["mlhost_phase"] = "python"
        hv["mlhost_failure"] = {"step": "python", "task": "Create or update the Python environments",
                                "msg": "No matching distribution for <script>alert(1)</script> & torch from https://user:s3cr3t@pypi.example/simple"}
    return hv


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> pathlib.Path:
    hostvars = {f"gpu-{i:03d}": hostvars_of(i) for i in range(HOSTS)}
    report = _fleet_report.report(hostvars, list(hostvars), stored={}, now="2026-12-03T06:00:00Z", run="full")
    templates = {k: (ROOT / "roles" / "ml_host" / "templates" / f"fleet-report.{k}.j2").read_text() for k in ("md", "html")}
    files = _fleet_report.render_files(report, templates, {"collection": "mlinfra.mlhost", "collection_version": "0.1.0",
                                                           "ansible_core": "2.18.x"})
    out = tmp_path_factory.mktemp("report") / "fleet-report.html"
    out.write_text(files["fleet-report.html"], encoding="utf-8")
    return out


class Dom(html.parser.HTMLParser):
    """The dumped DOM's host rows (their attributes), the elements with an id (their text), the table headers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.ids: dict[str, str] = {}
        self.headers: list[dict] = []
        self._open: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "host" in (a.get("class") or "").split():
            self.rows.append(a)
        if tag == "th" and "data-key" in a:
            self.headers.append(a)
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "link":
            self.external.append(str(a))
        if "id" in a:
            self.ids[a["id"]] = ""
        self._open.append(a.get("id") or "")

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for name in self._open:
            if name:
                self.ids[name] += data


def render(page: pathlib.Path, fragment: str, tmp_path: pathlib.Path) -> Dom:
    exe = browser()
    if exe is None:
        if os.environ.get("MLHOST_BROWSER_REQUIRED") == "1":
            pytest.fail("no chromium on PATH (scripts/test.sh installs Debian's chromium as root): the page was not rendered")
        pytest.skip("no chromium on PATH (apt-get install chromium; scripts/test.sh does it as root)")
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri() + fragment]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-3000:]
    dom = Dom()
    dom.feed(proc.stdout)
    return dom


def test_the_page_renders_every_host_and_the_counts(page, tmp_path):
    dom = render(page, "", tmp_path)
    assert len(dom.rows) == HOSTS and not any("hidden" in r for r in dom.rows)
    assert dom.ids["shown"] == f"{HOSTS} of {HOSTS} hosts shown"  # written by the page's script
    counts = {k: dom.ids[f"count-{k}"] for k in ("hosts", "ok", "failed", "unreachable", "reboot", "drained", "gpus")}
    bad = len(FAILED | UNREACHABLE)
    assert counts["hosts"].startswith(str(HOSTS)) and counts["ok"].startswith(str(HOSTS - bad))
    assert counts["failed"].startswith(str(bad)) and counts["unreachable"].startswith(str(len(UNREACHABLE)))
    assert counts["reboot"].startswith(str(len(REBOOT - UNREACHABLE)))
    assert counts["drained"].startswith("0")
    assert counts["gpus"].startswith(str(8 * (HOSTS - len(UNREACHABLE))))
    assert dom.external == []  # no stylesheet, script or image from anywhere: the file is all there is
    assert "<script>alert(1)" not in page.read_text() and "s3cr3t" not in page.read_text()


def test_a_status_filter_from_the_url_hides_the_other_rows(page, tmp_path):
    dom = render(page, "#status=failed", tmp_path)
    shown = [r["data-host"] for r in dom.rows if "hidden" not in r]
    assert sorted(shown) == sorted(FAILED | UNREACHABLE)
    assert dom.ids["shown"] == f"{len(FAILED | UNREACHABLE)} of {HOSTS} hosts shown"


def test_a_text_filter_and_a_sort_from_the_url(page, tmp_path):
    dom = render(page, "#q=no%20route%20to%20host&sort=-host", tmp_path)
    shown = [r["data-host"] for r in dom.rows if "hidden" not in r]
    assert shown == sorted(UNREACHABLE, reverse=True)  # filtered by Ansible's own message, sorted by host, descending
    assert [h.get("aria-sort") for h in dom.headers if h["data-key"] == "host"] == ["descending"]
    every = [r["data-host"] for r in dom.rows]
    assert every == sorted(every, reverse=True)
