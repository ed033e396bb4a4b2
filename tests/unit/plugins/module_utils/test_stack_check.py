# SPDX-License-Identifier: GPL-3.0-or-later
"""stack_check's logic on fixture trees, with commands answered at the one door.

The nvidia-smi rc-9 answer and the dpkg status with nvidia-driver installed are
captured in a Debian 12 test-bed container; the H100 CSV and banner are the
stand-ins named in fixtures/README.md; the nvcc and Python answers are written
here in the tools' formats (stand-ins, named so).
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _stack_check
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import SMI_FIELDS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._stack_check import StackCheck, failure_message
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text

SMI_QUERY = ("nvidia-smi", "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits")
NVCC = "/usr/local/cuda/bin/nvcc"
NVCC_VERSION = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.4, V12.4.131\n"
ENV = "/opt/mlhost/venvs/default"
H100_BASE = "sys/bus/pci/devices/0000:17:00.0"


class LiveTree(Sysroot):
    """A fixture tree that answers like the running system, so nvidia-smi is asked."""

    live = True  # type: ignore[assignment]


def h100_files(loaded: bool) -> dict:
    files = {
        "etc/os-release": fixture_text("os-release/debian12"),
        f"{H100_BASE}/vendor": "0x10de\n", f"{H100_BASE}/device": "0x2330\n", f"{H100_BASE}/class": "0x030200\n",
        "var/lib/dpkg/status": fixture_text("dpkg/status-debian12-nvidia-driver"),
    }
    if loaded:
        files["proc/modules"] = fixture_text("proc/modules-nvidia")
        files["proc/driver/nvidia/version"] = fixture_text("proc/nvidia-version-580-open")
    return files


@pytest.fixture
def tmpdir_fixed(tmp_path, monkeypatch):
    work = tmp_path / "work"

    def mkdtemp(prefix="", dir=None):
        work.mkdir()
        return str(work)

    monkeypatch.setattr(_stack_check.tempfile, "mkdtemp", mkdtemp)
    return work


def make(tree, files, responses, params, found=None):
    built = tree(files)
    for rel in files:
        if rel.endswith("/bin/python"):
            (built / rel).chmod(0o755)
    root = LiveTree(str(built))
    runner = FakeRunner(responses)
    found = found or {}

    def run(argv, cwd=None, timeout=None):
        return runner.run(argv, check=False, cwd=cwd, timeout=timeout)

    checker = StackCheck(root, run, found.get, dict({"checks": [], "framework": "auto", "timeout": 60}, **params))
    return checker, runner


def by_name(outcome):
    return {c["name"]: c for c in outcome["checks"]}


def test_cpu_host_with_no_env_skips_everything(tree):
    checker, runner = make(tree, {"etc/os-release": fixture_text("os-release/debian12"), "var/lib/dpkg/status": ""}, {}, {})
    outcome = checker.run_all()
    assert [(c["name"], c["status"]) for c in outcome["checks"]] == [
        ("nvidia_smi", "skipped"), ("gpu_health", "skipped"), ("mig", "skipped"), ("nvcc", "skipped"), ("python", "skipped"),
        ("dcgm_diag", "skipped"), ("container", "skipped")]
    assert outcome["failed_checks"] == [] and outcome["reboot_pending"] is False
    assert runner.calls == []


def test_driver_installed_not_loaded_is_reboot_pending_not_failure(tree):
    """The captured Debian 12 state: nvidia-driver 535 installed, nvidia-smi rc 9, no /proc/driver/nvidia."""
    rc9 = (int(fixture_text("smi/nvidia-smi-no-driver.rc")), fixture_text("smi/nvidia-smi-no-driver.stdout"), "")
    checker, runner = make(tree, h100_files(loaded=False), {SMI_QUERY: rc9}, {}, found={"nvidia-smi": "/usr/bin/nvidia-smi"})
    outcome = checker.run_all()
    smi = by_name(outcome)["nvidia_smi"]
    assert smi["status"] == "reboot_pending" and smi["ok"] is True
    assert "535.309.01 is installed but not loaded" in smi["detail"] and "Reboot" in smi["detail"]
    assert outcome["reboot_pending"] is True and outcome["failed_checks"] == []
    assert outcome["driver"] == {"installed_version": "535.309.01", "loaded_version": None}
    assert runner.calls == [list(SMI_QUERY)]


def test_smi_rc9_without_an_installed_driver_is_a_failure(tree):
    files = {"etc/os-release": fixture_text("os-release/debian12"), "var/lib/dpkg/status": "",
             f"{H100_BASE}/vendor": "0x10de\n", f"{H100_BASE}/device": "0x2330\n", f"{H100_BASE}/class": "0x030200\n"}
    rc9 = (9, fixture_text("smi/nvidia-smi-no-driver.stdout"), "")
    checker, _runner = make(tree, files, {SMI_QUERY: rc9}, {"checks": ["nvidia_smi"]})
    outcome = checker.run_all()
    assert outcome["failed_checks"] == ["nvidia_smi"]
    assert "rc=9" in outcome["checks"][0]["detail"]
    assert failure_message(outcome).startswith("Stack check failed - nvidia_smi: nvidia-smi failed: rc=9")


def test_live_h100_answers(tree):
    csv = fixture_text("smi/h100-580.95.05.csv")
    banner = fixture_text("smi/banner-580.95.05.txt")
    checker, _runner = make(tree, h100_files(loaded=True), {SMI_QUERY: (0, csv, ""), ("nvidia-smi",): (0, banner, "")},
                            {"checks": ["nvidia_smi"]})
    smi = checker.run_all()["checks"][0]
    assert smi["status"] == "ok"
    assert smi["detail"] == "1 GPU(s): NVIDIA H100 80GB HBM3; driver 580.95.05, CUDA 13.0"
    assert smi["gpus"][0]["pci"] == "0000:17:00.0"


def test_nvcc_compiles_but_does_not_run_without_a_loaded_driver(tree, tmpdir_fixed):
    files = h100_files(loaded=False)
    files["usr/local/cuda/bin/nvcc"] = "#!/bin/sh\n"
    exe, src = str(tmpdir_fixed / "vector_add"), str(tmpdir_fixed / "vector_add.cu")
    checker, runner = make(tree, files, {(NVCC, "--version"): (0, NVCC_VERSION, ""), (NVCC, "-o", exe, src): (0, "", "")},
                           {"checks": ["nvcc"]})
    files_seen = []
    original = runner.run

    def spy(argv, **kw):
        if argv[1:2] == ["-o"]:
            files_seen.append(open(src).read())
        return original(argv, **kw)

    runner.run = spy
    nvcc = checker.run_all()["checks"][0]
    assert nvcc["status"] == "ok" and nvcc["ran"] is False and nvcc["version"] == "12.4.131"
    assert "not run (reboot pending" in nvcc["detail"]
    assert "__global__ void vector_add" in files_seen[0]
    assert not tmpdir_fixed.exists(), "the temporary directory is removed"


def test_nvcc_compiles_and_runs_with_a_loaded_driver(tree, tmpdir_fixed):
    files = h100_files(loaded=True)
    files["opt/cuda-12.4/bin/nvcc"] = "#!/bin/sh\n"
    nvcc_bin = "/opt/cuda-12.4/bin/nvcc"
    exe, src = str(tmpdir_fixed / "vector_add"), str(tmpdir_fixed / "vector_add.cu")
    checker, runner = make(tree, files, {
        (nvcc_bin, "--version"): (0, NVCC_VERSION, ""),
        (nvcc_bin, "-o", exe, src): (0, "", ""),
        (exe,): (0, "mlhost-vector-add: ok n=65536\n", ""),
    }, {"checks": ["nvcc"], "cuda_home": "/opt/cuda-12.4"})
    nvcc = checker.run_all()["checks"][0]
    assert nvcc["status"] == "ok" and nvcc["ran"] is True
    assert nvcc["detail"].endswith("ran on the GPU: mlhost-vector-add: ok n=65536")


def test_nvcc_compile_error_fails_with_the_compiler_output(tree, tmpdir_fixed):
    files = {"etc/os-release": fixture_text("os-release/debian13"), "usr/local/cuda/bin/nvcc": "#!/bin/sh\n"}
    exe, src = str(tmpdir_fixed / "vector_add"), str(tmpdir_fixed / "vector_add.cu")
    err = "nvcc fatal   : Cannot find compiler 'cl.exe' in PATH\n"
    checker, _runner = make(tree, files, {(NVCC, "--version"): (0, NVCC_VERSION, ""), (NVCC, "-o", exe, src): (1, "", err)}, {})
    outcome = checker.run_all()
    assert outcome["failed_checks"] == ["nvcc"]
    assert "could not compile a vector-add kernel: nvcc fatal" in by_name(outcome)["nvcc"]["detail"]


def test_explicit_nvcc_without_a_toolkit_fails_and_says_how(tree):
    checker, _runner = make(tree, {"etc/os-release": fixture_text("os-release/debian12")}, {}, {"checks": ["nvcc"]})
    nvcc = checker.run_all()["checks"][0]
    assert nvcc["status"] == "failed" and "Install a CUDA toolkit or set cuda_home" in nvcc["detail"]


def probe_answer(**data):
    base = {"python": "3.11.2", "framework": None, "version": None, "gpu": None, "error": None}
    base.update(data)
    return (0, json.dumps(base) + "\n", "")


def python_files(loaded: bool | None = None) -> dict:
    files = h100_files(loaded) if loaded is not None else {"etc/os-release": fixture_text("os-release/debian12")}
    files[f"{ENV.lstrip('/')}/bin/python"] = "#!/bin/sh\n"
    return files


def probe_argv(framework="auto", live="0"):
    return (f"{ENV}/bin/python", "-I", "-c", _stack_check.PROBE, framework, live)


@pytest.mark.parametrize("answer, status, detail", [
    (probe_answer(), "ok", "/opt/mlhost/venvs/default (Python 3.11.2) runs; no framework (torch/jax) installed."),
    (probe_answer(framework="torch", version="2.5.1+cpu"), "ok", "/opt/mlhost/venvs/default (Python 3.11.2) imports torch 2.5.1+cpu."),
    (probe_answer(framework="torch", error="ImportError: libcudnn.so.9: cannot open shared object file"), "failed",
     "/opt/mlhost/venvs/default: importing torch failed: ImportError: libcudnn.so.9: cannot open shared object file"),
])
def test_python_env_on_a_cpu_host(tree, answer, status, detail):
    checker, _runner = make(tree, python_files(), {probe_argv(): answer}, {"python_env": ENV})
    py = by_name(checker.run_all())["python"]
    assert (py["status"], py["detail"]) == (status, detail)


def test_torch_that_does_not_see_a_live_gpu_fails(tree):
    answer = probe_answer(framework="torch", version="2.5.1+cpu", gpu={"available": False, "count": 0, "cuda": None})
    checker, _runner = make(tree, python_files(loaded=True), {probe_argv("torch", "1"): answer},
                            {"checks": ["python"], "python_env": ENV, "framework": "torch"})
    py = checker.run_all()["checks"][0]
    assert py["status"] == "failed" and "does not see the GPU (a CPU-only build? set torch_cuda on the env)" in py["detail"]


def test_torch_that_sees_the_gpu(tree):
    answer = probe_answer(framework="torch", version="2.5.1+cu124", gpu={"available": True, "count": 8, "cuda": "12.4"})
    checker, _runner = make(tree, python_files(loaded=True), {probe_argv("torch", "1"): answer},
                            {"checks": ["python"], "python_env": ENV, "framework": "torch"})
    py = checker.run_all()["checks"][0]
    assert py["status"] == "ok" and py["detail"].endswith("imports torch 2.5.1+cu124 (CUDA 12.4) and sees 8 GPU(s).")


# Hand-written in the shape torch prints (get_arch_list() of torch 2.11.0+cu128 as reported in pytorch/pytorch#182250;
# get_device_capability() of a V100 is (7, 0)): no captured output of a GPU host is at hand.
ARCH_2_11_CU128 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
ARCH_2_11_CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


@pytest.mark.parametrize("arch, capability, covered", [
    (ARCH_2_11_CU128, "7.0", False), (ARCH_2_11_CU128, "7.5", True), (ARCH_2_11_CU128, "8.9", True),  # Ada runs sm_86
    (ARCH_2_11_CU128, "12.0", True), (ARCH_2_11_CU128, "10.3", True), (ARCH_2_11_CU128, "6.1", False),
    (ARCH_2_11_CU126, "6.1", True), (ARCH_2_11_CU126, "12.0", False),  # no Blackwell cubin, no PTX
    (ARCH_2_11_CU126 + ["compute_90"], "12.0", True),  # PTX is compiled for newer GPUs
    (["sm_90a", "sm_100f"], "9.0", True), (["sm_120", "compute_120"], "8.0", False),
    ([], "8.0", False), (["gfx90a"], "8.0", False), (ARCH_2_11_CU128, "", True), (ARCH_2_11_CU128, "x.y", True),
])
def test_arch_covers(arch, capability, covered):
    assert _stack_check.arch_covers(arch, capability) is covered


def test_torch_without_kernels_for_the_gpu_fails_naming_the_fix(tree):
    gpu = {"available": True, "count": 2, "cuda": "12.8", "arch_list": ARCH_2_11_CU128, "capabilities": ["7.0", "7.0"]}
    answer = probe_answer(framework="torch", version="2.11.0+cu128", gpu=gpu)
    checker, _runner = make(tree, python_files(loaded=True), {probe_argv("torch", "1"): answer},
                            {"checks": ["python"], "python_env": ENV, "framework": "torch"})
    py = checker.run_all()["checks"][0]
    assert py["status"] == "failed" and "no kernels for this host's GPU compute capability 7.0" in py["detail"]
    assert "torch_cuda: auto" in py["detail"] and "sm_75, sm_80" in py["detail"]
    gpu.update(capabilities=["9.0"])
    answer = probe_answer(framework="torch", version="2.11.0+cu128", gpu=gpu)
    checker, _runner = make(tree, python_files(loaded=True), {probe_argv("torch", "1"): answer},
                            {"checks": ["python"], "python_env": ENV, "framework": "torch"})
    assert checker.run_all()["checks"][0]["status"] == "ok"


def test_reboot_pending_env_is_not_asked_about_the_gpu(tree):
    checker, _runner = make(tree, python_files(loaded=False), {probe_argv(): probe_answer()}, {"checks": ["python"], "python_env": ENV})
    py = checker.run_all()["checks"][0]
    assert py["status"] == "ok" and "GPU not checked: reboot pending" in py["detail"]


def test_missing_env_fails_naming_the_fix(tree):
    checker, runner = make(tree, {"etc/os-release": fixture_text("os-release/debian12")}, {}, {"python_env": "/opt/nope"})
    py = by_name(checker.run_all())["python"]
    assert py["status"] == "failed" and "/opt/nope is not a Python environment" in py["detail"]
    assert runner.calls == []


def test_probe_script_runs_here_and_prints_json(tmp_path):
    """The probe is real Python: run it with this interpreter (no torch or jax here)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-I", "-c", _stack_check.PROBE, "json", "0"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["framework"] == "json" and data["error"] is None and data["gpu"] is None
    out = subprocess.run([sys.executable, "-I", "-c", _stack_check.PROBE, "mlhost_no_such_module", "0"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["error"].startswith("ModuleNotFoundError")


JOURNAL = ("journalctl", "-k", "-b", "--no-pager", "-q", "-o", "short-monotonic")


def test_gpu_health_runs_where_the_driver_is_loaded(tree):
    """nvidia-smi -q and the kernel log are stand-ins (fixtures/smi_q/, hand-written in their layouts)."""
    data = fixture_text("smi_q/hgx-h100-ecc-errors.txt")
    checker, runner = make(tree, h100_files(loaded=True),
                           {("nvidia-smi", "-q"): (0, data, ""), JOURNAL: (0, fixture_text("smi_q/kernel-log-xid.txt"), "")},
                           {"checks": ["gpu_health"]})
    outcome = checker.run_all()
    health = by_name(outcome)["gpu_health"]
    assert health["status"] == "failed" and outcome["failed_checks"] == ["gpu_health"]
    assert health["detail"].startswith("gpu_count: nvidia-smi lists 8 GPU(s), the PCI bus 1: a GPU on the bus")
    assert "ecc: 0000:5d:00.0: 2 uncorrectable ECC error(s)" in health["detail"] and "xid: 2 Xid error(s)" in health["detail"]
    assert runner.calls == [["nvidia-smi", "-q"], list(JOURNAL)]


def test_gpu_health_falls_back_to_dmesg_and_a_failed_query_is_unhealthy(tree):
    healthy = fixture_text("smi_q/pcie-l40s-degraded.txt")
    denied = (1, "", "dmesg: read kernel buffer failed: Operation not permitted\n")
    checker, runner = make(tree, h100_files(loaded=True),
                           {("nvidia-smi", "-q"): (0, healthy, ""), JOURNAL: None, ("dmesg",): denied}, {"checks": ["gpu_health"]})
    health = checker.run_all()["checks"][0]
    assert "xid: the kernel log could not be read (journalctl: not found; dmesg: dmesg: read kernel buffer failed" in health["detail"]
    broken = (15, "", "Unable to determine the device handle for GPU0000:17:00.0: Unknown Error\n")
    checker, runner = make(tree, h100_files(loaded=True), {("nvidia-smi", "-q"): broken}, {"checks": ["gpu_health"]})
    failed = checker.run_all()["checks"][0]
    assert failed["status"] == "failed" and failed["detail"].startswith("nvidia-smi -q failed (rc=15): Unable to determine")


def test_an_nvswitch_on_the_bus_needs_the_fabric_even_where_nvidia_smi_says_nothing_of_it(tree):
    """#17 item 2: on an NVSwitch node the fabric check runs, and a fabric nvidia-smi does not report fails it
    (a PCIe card's nvidia-smi -q, a stand-in in fixtures/smi_q/, has no Fabric state; the switch is 10de:22a3, LS10)."""
    data = fixture_text("smi_q/pcie-l40s-degraded.txt")
    switch = "sys/bus/pci/devices/0000:05:00.0"
    with_switch = dict(h100_files(loaded=True), **{f"{switch}/vendor": "0x10de\n", f"{switch}/device": "0x22a3\n",
                                                   f"{switch}/class": "0x068000\n"})
    answers = {("nvidia-smi", "-q"): (0, data, ""), JOURNAL: (0, "", "")}
    without = make(tree, h100_files(loaded=True), answers, {"checks": ["gpu_health"]})[0].run_all()["checks"][0]
    assert "fabric: " not in without["detail"]  # (the tree keeps its files: the node without the switch first)
    health = make(tree, with_switch, answers, {"checks": ["gpu_health"]})[0].run_all()["checks"][0]
    assert health["status"] == "failed" and "fabric: " in health["detail"]
    assert "the NVSwitch fabric state is not reported" in health["detail"]


DIAG = ("dcgmi", "diag", "-r", "1")


def test_dcgm_diag_passes_per_gpu(tree):
    """fixtures/dcgmi/ are hand-written in dcgmi diag's documented table layout (fixtures/README.md)."""
    checker, runner = make(tree, h100_files(loaded=True), {DIAG: (0, fixture_text("dcgmi/diag-r1-all.txt"), "")},
                           {"dcgm_diag_level": 1})
    assert "dcgm_diag" in checker.applicable()
    check = checker.check_dcgm_diag()
    assert check["status"] == "ok" and check["gpus"] == {"0": "pass"} and check["level"] == 1
    assert runner.calls == [list(DIAG)]


@pytest.mark.parametrize("answer", [
    (0, fixture_text("dcgmi/diag-r1-fail-gpu3.txt"), ""),
    (255, fixture_text("dcgmi/diag-error.txt"), ""),
    (0, "", ""),
    (1, fixture_text("dcgmi/diag-r1-all.txt"), ""),
])
def test_dcgm_diag_failed_or_unparsable_is_a_failed_check(tree, answer):
    checker, _runner = make(tree, h100_files(loaded=True), {DIAG: answer}, {"dcgm_diag_level": 1})
    check = checker.check_dcgm_diag()
    assert check["status"] == "failed" and check["ok"] is False


def test_dcgm_diag_off_by_default_and_level_checked(tree):
    checker, _runner = make(tree, h100_files(loaded=True), {}, {})
    assert "dcgm_diag" not in checker.applicable()
    for bad in (-1, 5, True, "1"):
        with pytest.raises(_stack_check.ModuleError):
            _stack_check.check_options({"dcgm_diag_level": bad, "timeout": 60, "framework": "auto"})


# ---- mig: nvidia-smi mig -lgi against the layout (hand-written output, tests/unit/fixtures/mig/README.md) ----
LGI = ("nvidia-smi", "mig", "-lgi")


@pytest.mark.parametrize("answer, layout, status, words", [
    ((0, fixture_text("mig/lgi-h100-7x1g.txt"), ""), {"0": {"1g.10gb": 7}, "1": {"3g.40gb": 2, "1g.10gb": 1}}, "ok",
     "10 MIG instance(s) on 2 GPU(s)"),
    ((0, fixture_text("mig/lgi-h100-7x1g.txt"), ""), {"0": {"1g.10gb": 7}, "1": {"7g.80gb": 1}}, "failed",
     "GPU 1: MIG instances 1g.10gb x1, 3g.40gb x2, the layout wants 7g.80gb x1"),
    ((6, fixture_text("mig/lgi-none.txt"), ""), {"0": {"1g.10gb": 7}}, "failed", "GPU 0: MIG instances none"),
    ((6, fixture_text("mig/lgi-none.txt"), ""), {"0": "disabled"}, "ok", "0 MIG instance(s)"),
    ((255, "", "Failed to initialize NVML: Driver/library version mismatch\n"), {"0": "disabled"}, "failed",
     "counts as a failed check"),
])
def test_mig_check_compares_the_instances_with_the_layout(tree, answer, layout, status, words):
    checker, runner = make(tree, h100_files(loaded=True), {LGI: answer}, {"checks": ["mig"], "mig_layout": layout})
    mig = by_name(checker.run_all())["mig"]
    assert mig["status"] == status and words in mig["detail"], mig


def test_mig_check_applies_only_with_a_layout_and_a_loaded_driver(tree):
    checker, dummy = make(tree, h100_files(loaded=False), {}, {"mig_layout": {"0": "disabled"}})
    assert "mig" not in checker.applicable()
    checker, dummy = make(tree, h100_files(loaded=True), {}, {"mig_layout": {}})
    assert "mig" not in checker.applicable()
    checker, dummy = make(tree, h100_files(loaded=True), {}, {"mig_layout": {"0": "disabled"}})
    assert "mig" in checker.applicable()


@pytest.mark.parametrize("layout", [["0"], {"zero": "disabled"}, {"0": "on"}, {"0": {"1g.10gb": True}}, {"0": {"1g.10gb": 0}}])
def test_mig_layout_option_is_checked(layout):
    with pytest.raises(ModuleError, match="mig_layout must be"):
        _stack_check.check_options({"mig_layout": layout, "expected_gpus": 0, "timeout": 60, "framework": "auto"})


# ---- container: a CUDA image run through CDI. The engines' messages are hand-written from docker 26 / podman 5
# (not captured here: no engine runs GPU containers in the test bed).
IMAGE = "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04"
RUN = ("--rm", "--pull=never", "--device", "nvidia.com/gpu=all", IMAGE, "nvidia-smi", "-L")
LISTED = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-4a0c1f6e-0000-0000-0000-000000000000)\n"


@pytest.mark.parametrize("engine, found, answer, status, words", [
    ("auto", {"docker": "/usr/bin/docker", "podman": "/usr/bin/podman"}, (0, LISTED, ""), "ok", "docker ran"),
    ("auto", {"podman": "/usr/bin/podman"}, (0, LISTED, ""), "ok", "podman ran"),
    ("podman", {"docker": "/usr/bin/docker", "podman": "/usr/bin/podman"}, (0, LISTED, ""), "ok", "podman ran"),
    ("auto", {"docker": "/usr/bin/docker"}, (125, "", f"docker: Error response from daemon: No such image: {IMAGE}.\n"),
     "failed", "docker pull (or load)"),
    ("auto", {"podman": "/usr/bin/podman"}, (126, "", "Error: setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=all\n"),
     "failed", "generate it"),
    ("auto", {"docker": "/usr/bin/docker"}, (0, "", ""), "failed", "saw 0 GPU(s) of the 1"),
    ("auto", {}, None, "failed", "No docker or podman on PATH"),
])
def test_container_check_runs_the_image_through_cdi(tree, engine, found, answer, status, words):
    picked = "podman" if engine == "podman" or "docker" not in found else "docker"
    responses = {(picked, "run", *RUN): answer} if answer else {}
    checker, runner = make(tree, h100_files(loaded=True), responses, {"container_image": IMAGE, "container_engine": engine},
                           found=found)
    assert "container" in checker.applicable()
    check = checker.check_container()
    assert (check["status"], check["ok"]) == (status, status == "ok")
    assert words in check["detail"]
    assert runner.calls == ([[picked, "run", *RUN]] if answer else [])


def test_container_check_waits_for_the_reboot_and_is_off_without_an_image(tree):
    checker, runner = make(tree, h100_files(loaded=False), {}, {"container_image": IMAGE}, found={"docker": "/usr/bin/docker"})
    assert checker.check_container()["status"] == "reboot_pending" and runner.calls == []
    checker, runner = make(tree, h100_files(loaded=True), {}, {})
    assert "container" not in checker.applicable() and checker.check_container()["status"] == "skipped"


def test_container_check_is_skipped_on_a_cpu_host_of_a_fleet_wide_image(tree):
    cpu = {"etc/os-release": fixture_text("os-release/debian12"), "var/lib/dpkg/status": ""}
    checker, runner = make(tree, cpu, {}, {"container_image": IMAGE}, found={"docker": "/usr/bin/docker"})
    assert "container" not in checker.applicable()
    outcome = checker.run_all()
    assert by_name(outcome)["container"]["status"] == "skipped" and outcome["failed_checks"] == [] and runner.calls == []
    checker, runner = make(tree, cpu, {}, {"container_image": IMAGE, "checks": ["container"]}, found={"docker": "/usr/bin/docker"})
    assert checker.check_container()["status"] == "failed" and runner.calls == []


@pytest.mark.parametrize("image", ["--privileged", "cuda 12", "cuda\x00", "a" * 300, "img;rm -rf /", "$(id)", ["cuda"]])
def test_container_image_that_is_not_a_reference_is_refused(image):
    with pytest.raises(ModuleError, match="not an image reference"):
        _stack_check.check_options({"container_image": image, "timeout": 60, "framework": "auto"})
