# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""End-to-end checks of an ML host's stack: nvidia-smi, nvcc, a Python env's framework.

PRIVATE to the collection: no compatibility promise outside it.

``StackCheck`` reads files below a Sysroot and runs commands only through
``run`` (the one door, called as ``run(argv, cwd=..., timeout=...)`` and
returning None for a missing program). It never changes the host: nvcc
compiles into a temporary directory that is removed afterwards.

Each check returns {name, ok, status, detail}; status is one of ok, failed,
skipped (does not apply here) or reboot_pending (the NVIDIA driver is
installed but its kernel module is not loaded: a reboot finishes the job,
nothing is broken).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _cuda, _distro, _gpu_health, _gpu_services, _host, _mig, _nvidia
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

CHECKS = ("nvidia_smi", "gpu_health", "mig", "nvcc", "python", "dcgm_diag", "container")
# An image reference as docker and podman take it: [registry[:port]/]path[:tag][@digest], no option, no space.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}")
ENGINES = ("docker", "podman")
FRAMEWORKS = ("auto", "torch", "jax", "none")
NO_DRIVER_MARKERS = ("couldn't communicate with the nvidia driver", "no devices were found", "driver/library version mismatch")

VECTOR_ADD = r"""// mlinfra.mlhost stack_check: add two vectors on the GPU and check the sum.
#include <cstdio>

__global__ void vector_add(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

int main() {
    const int n = 1 << 16;
    float *a, *b, *c;
    if (cudaMallocManaged(&a, n * sizeof(float)) != cudaSuccess ||
        cudaMallocManaged(&b, n * sizeof(float)) != cudaSuccess ||
        cudaMallocManaged(&c, n * sizeof(float)) != cudaSuccess) {
        printf("mlhost-vector-add: cudaMallocManaged failed: %s\n", cudaGetErrorString(cudaGetLastError()));
        return 2;
    }
    for (int i = 0; i < n; i++) { a[i] = (float)i; b[i] = 2.0f * i; }
    vector_add<<<(n + 255) / 256, 256>>>(a, b, c, n);
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        printf("mlhost-vector-add: kernel failed: %s\n", cudaGetErrorString(err));
        return 3;
    }
    for (int i = 0; i < n; i++) {
        if (c[i] != 3.0f * i) {
            printf("mlhost-vector-add: wrong sum at %d: %f\n", i, c[i]);
            return 4;
        }
    }
    printf("mlhost-vector-add: ok n=%d\n", n);
    cudaFree(a); cudaFree(b); cudaFree(c);
    return 0;
}
"""

# Runs inside the env's own interpreter: argv[1] is the framework (auto, torch, jax, none, or a
# module name), argv[2] is "1" when a GPU and a loaded driver are there to be seen.
PROBE = r"""
import importlib, importlib.util, json, sys
want, gpu_live = sys.argv[1], sys.argv[2] == "1"
out = {"python": sys.version.split()[0], "framework": None, "version": None, "gpu": None, "error": None}
try:
    if want == "auto":
        want = next((m for m in ("torch", "jax") if importlib.util.find_spec(m)), "none")
    if want != "none":
        out["framework"] = want
        mod = importlib.import_module(want)
        out["version"] = str(getattr(mod, "__version__", "") or "") or None
    if gpu_live:
        if want == "torch":
            out["gpu"] = {"available": bool(mod.cuda.is_available()), "count": int(mod.cuda.device_count()),
                          "cuda": getattr(mod.version, "cuda", None)}
            if out["gpu"]["available"]:
                out["gpu"]["arch_list"] = [str(a) for a in mod.cuda.get_arch_list()]
                out["gpu"]["capabilities"] = ["%d.%d" % mod.cuda.get_device_capability(i) for i in range(out["gpu"]["count"])]
        elif want == "jax":
            devices = [d for d in mod.devices() if d.platform == "gpu"] if hasattr(mod, "devices") else []
            out["gpu"] = {"available": bool(devices), "count": len(devices), "cuda": None}
        elif importlib.util.find_spec("pynvml"):
            import pynvml
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            out["gpu"] = {"available": count > 0, "count": count, "cuda": None}
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(out))
"""


def arch_covers(arch_list: list[str], capability: str) -> bool:
    """Does torch's ``get_arch_list()`` (sm_75, sm_90a, compute_120) hold code a GPU of ``capability`` ('8.6') runs:
    a cubin of its major and a minor at most its own, or PTX of at most its capability (JIT-compiled)?"""
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)", capability or "")
    if not match:
        return True  # not known: nothing to say
    have = (int(match.group(1)), int(match.group(2)))
    for arch in arch_list:
        found = re.fullmatch(r"(sm|compute)_([0-9]+)([0-9])[af]?", arch)
        if not found:
            continue
        kind, built = found.group(1), (int(found.group(2)), int(found.group(3)))
        if (kind == "sm" and built[0] == have[0] and built[1] <= have[1]) or (kind == "compute" and built <= have):
            return True
    return False


def result(name: str, status: str, detail: str, **extra: t.Any) -> dict[str, t.Any]:
    entry = {"name": name, "ok": status in ("ok", "skipped", "reboot_pending"), "status": status, "detail": detail}
    entry.update(extra)
    return entry


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class StackCheck:
    """The checks of one host; ``run`` is the one door with check=False semantics."""

    def __init__(self, root: Sysroot, run: t.Callable[..., t.Any], find: t.Callable[[str], str | None],
                 params: dict[str, t.Any], tmp_base: str | None = None) -> None:
        self.root = root
        self.run = run
        self.find = find
        self.p = params
        self.tmp_base = tmp_base
        self._driver: dict[str, t.Any] | None = None

    # --- what the host has ---------------------------------------------------
    def driver(self) -> dict[str, t.Any]:
        """GPUs on the bus, the installed driver (package database) and the loaded one (/proc)."""
        if self._driver is None:
            loaded, _flavor = _nvidia.loaded_driver(self.root)
            pkg_mgr = _distro.pkg_mgr_for(_distro.distro_facts(self.root), self.root)
            packages, _source = _host.installed_packages(self.root, pkg_mgr, self.run)
            installed, _listing = _nvidia.installed_driver(packages)
            self._driver = {
                "gpus": len(_nvidia.pci_gpus(self.root)),
                "installed_version": installed,
                "loaded_version": loaded,
                "reboot_pending": bool(installed) and not loaded,
            }
        return self._driver

    def nvcc_path(self) -> str | None:
        home = self.p.get("cuda_home")
        candidates = [os.path.join(home, "bin", "nvcc")] if home else []
        if not home:
            on_path = self.find("nvcc")
            if on_path:
                candidates.append(on_path)
            candidates.append("/usr/local/cuda/bin/nvcc")
        for candidate in candidates:
            if self.root.is_executable(candidate.lstrip("/")):
                return candidate
        return None

    def applicable(self) -> list[str]:
        """The checks that apply when none are named: where there is something to check."""
        names = []
        drv = self.driver()
        if gpu_host(drv) or self.find("nvidia-smi"):
            names.append("nvidia_smi")
        if drv["loaded_version"]:
            names.append("gpu_health")
        if drv["loaded_version"] and self.p.get("mig_layout"):
            names.append("mig")
        if self.nvcc_path():
            names.append("nvcc")
        if self.p.get("python_env"):
            names.append("python")
        if self.p.get("dcgm_diag_level"):
            names.append("dcgm_diag")
        if self.p.get("container_image") and gpu_host(drv):
            names.append("container")
        return names

    # --- the checks ----------------------------------------------------------
    def check_nvidia_smi(self) -> dict[str, t.Any]:
        drv = self.driver()
        rows, cuda, status = _host.nvidia_smi(self.root, self.run)
        if status == "ok":
            if not rows:
                return result("nvidia_smi", "failed", "nvidia-smi answered but lists no GPU.", gpus=[])
            names = sorted({row["name"] or "unknown" for row in rows})
            detail = (f"{len(rows)} GPU(s): {', '.join(names)}; driver {rows[0]['driver_version']}"
                      f"{', CUDA ' + cuda if cuda else ''}")
            return result("nvidia_smi", "ok", detail, gpus=rows, cuda_driver_api=cuda)
        if status == "not_found":
            if drv["installed_version"]:
                return result("nvidia_smi", "failed",
                              f"NVIDIA driver {drv['installed_version']} is installed but nvidia-smi is not on PATH. "
                              "Install the driver's nvidia-smi package (Debian: nvidia-smi), then rerun.")
            return result("nvidia_smi", "failed" if self.explicit("nvidia_smi") else "skipped",
                          "No NVIDIA driver is installed (nvidia-smi not found).")
        lowered = status.lower()
        if drv["reboot_pending"] and ("rc=9" in lowered or any(m in lowered for m in NO_DRIVER_MARKERS)):
            return result("nvidia_smi", "reboot_pending",
                          f"NVIDIA driver {drv['installed_version']} is installed but not loaded (no "
                          f"/proc/driver/nvidia/version; nvidia-smi: {status.split(': ', 2)[-1]}). Reboot the host to load it.")
        return result("nvidia_smi", "failed", f"nvidia-smi {status}")

    def check_gpu_health(self) -> dict[str, t.Any]:
        """The named health checks (_gpu_health): GPU count, ECC, retired pages, remapped rows, the PCIe link width,
        persistence mode, the NVSwitch fabric, Xid errors since boot. A query that fails is a failed check."""
        drv = self.driver()
        if not self.root.live:
            return result("gpu_health", "skipped", "The sysroot is not the live system: nothing to ask nvidia-smi about.")
        query = self.run(["nvidia-smi", "-q"], timeout=self.p.get("timeout"))
        if query is None:
            return result("gpu_health", "failed" if drv["installed_version"] or self.explicit("gpu_health") else "skipped",
                          "nvidia-smi is not on PATH: the GPUs' health cannot be read.")
        if query.rc != 0:
            lowered = (query.out + query.err).lower()
            if drv["reboot_pending"] and (query.rc == 9 or any(m in lowered for m in NO_DRIVER_MARKERS)):
                return result("gpu_health", "reboot_pending", "Not checked: the driver is installed, not loaded (reboot pending).")
            return result("gpu_health", "failed", f"nvidia-smi -q failed (rc={query.rc}): {_tail(query.err + query.out, 3)}. "
                          "A health query that fails counts as unhealthy.")
        smi = _gpu_health.parse_smi_q(query.out)
        xids, xid_error = self.kernel_xids()
        # An NVSwitch on the PCI bus (host_facts' reader) needs the fabric up, whatever nvidia-smi says of it; so does
        # a GPU whose fabric state nvidia-smi reports (and not as "not supported").
        fabric_needed = bool(_nvidia.pci_nvswitches(self.root)) or any(
            _gpu_health.known(g["fabric_state"]) and str(g["fabric_state"]).lower() != "not supported" for g in smi["gpus"])
        health = _gpu_health.assess(smi, xids, xid_error, drv["gpus"], int(self.p.get("expected_gpus") or 0), fabric_needed)
        bad = [h for h in health if not h["ok"]]
        if bad:
            return result("gpu_health", "failed", " | ".join(f"{h['name']}: {h['detail']}" for h in bad), health=health)
        return result("gpu_health", "ok", f"{len(smi['gpus'])} GPU(s) healthy: " + ", ".join(h["name"] for h in health) + ".",
                      health=health)

    def check_mig(self) -> dict[str, t.Any]:
        """The GPU instances nvidia-smi lists (``nvidia-smi mig -lgi``) against the MIG layout (mig_layout's
        ``layout``: GPU index -> profile counts, or disabled); a query that fails is a failed check."""
        layout = self.p.get("mig_layout") or {}
        if not layout:
            return result("mig", "failed" if self.explicit("mig") else "skipped", "No mig_layout given.")
        if self.driver()["reboot_pending"]:
            return result("mig", "reboot_pending", "Not checked: the driver is installed, not loaded (reboot pending).")
        expected = {int(k): (v if isinstance(v, dict) else {}) for k, v in layout.items()}
        query = self.run(["nvidia-smi", "mig", "-lgi"], timeout=self.p.get("timeout"))
        if query is None:
            return result("mig", "failed", "nvidia-smi is not on PATH: the MIG instances cannot be read.")
        text = query.out + query.err
        found = _mig.parse_lgi(text)
        if query.rc != 0 and not found and not re.search(r"no (gpu instances|mig-enabled devices) found", text, re.I):
            return result("mig", "failed", f"nvidia-smi mig -lgi failed (rc={query.rc}): {_tail(text, 3)}. "
                          "A MIG query that fails counts as a failed check.")
        problems = _mig.compare_lgi(expected, found)
        if problems:
            return result("mig", "failed", "; ".join(problems) + ". Rerun the play (mig_layout applies the layout) or see "
                          "journalctl -u nvidia-mig-manager.service.", instances={str(k): v for k, v in found.items()})
        count = sum(sum(v.values()) for v in found.values())
        return result("mig", "ok", f"{count} MIG instance(s) on {len(found)} GPU(s), as the layout asks.",
                      instances={str(k): v for k, v in found.items()})

    def kernel_xids(self) -> tuple[list[dict[str, t.Any]] | None, str | None]:
        """The Xid lines of this boot's kernel log (journalctl -k -b, else dmesg); (None, why) when neither reads."""
        tried = []
        for argv in (["journalctl", "-k", "-b", "--no-pager", "-q", "-o", "short-monotonic"], ["dmesg"]):
            got = self.run(argv, timeout=self.p.get("timeout"))
            if got is not None and got.rc == 0:
                return _gpu_health.parse_xids(got.out), None
            tried.append(f"{argv[0]}: {'not found' if got is None else _tail(got.err + got.out, 1) or f'rc={got.rc}'}")
        return None, "; ".join(tried)

    def check_nvcc(self) -> dict[str, t.Any]:
        nvcc = self.nvcc_path()
        if nvcc is None:
            where = f"{self.p['cuda_home']}/bin/nvcc" if self.p.get("cuda_home") else "nvcc on PATH or /usr/local/cuda/bin/nvcc"
            return result("nvcc", "failed" if self.explicit("nvcc") else "skipped",
                          f"No CUDA compiler found ({where}). Install a CUDA toolkit or set cuda_home.")
        version_run = self.run([nvcc, "--version"])
        version = _cuda.parse_nvcc_version(version_run.out) if version_run is not None and version_run.rc == 0 else None
        tmp = tempfile.mkdtemp(prefix="mlhost-stack-check-", dir=self.tmp_base)
        try:
            source = os.path.join(tmp, "vector_add.cu")
            exe = os.path.join(tmp, "vector_add")
            with open(source, "w", encoding="utf-8") as handle:
                handle.write(VECTOR_ADD)
            compiled = self.run([nvcc, "-o", exe, source], cwd=tmp, timeout=self.p.get("timeout"))
            if compiled is None or compiled.rc != 0:
                why = _tail((compiled.err + compiled.out) if compiled else "nvcc did not run")
                return result("nvcc", "failed", f"nvcc {version or ''} could not compile a vector-add kernel: {why}".replace("  ", " "),
                              nvcc=nvcc, version=version)
            drv = self.driver()
            if not drv["loaded_version"]:
                why = "reboot pending: the driver is installed, not loaded" if drv["reboot_pending"] else "no NVIDIA driver loaded"
                return result("nvcc", "ok", f"nvcc {version} compiled a vector-add kernel; not run ({why}).",
                              nvcc=nvcc, version=version, ran=False)
            ran = self.run([exe], cwd=tmp, timeout=self.p.get("timeout"))
            if ran is None or ran.rc != 0:
                why = _tail((ran.out + ran.err) if ran else "did not start")
                return result("nvcc", "failed", f"the kernel nvcc {version} compiled failed on the GPU: {why}",
                              nvcc=nvcc, version=version, ran=True)
            return result("nvcc", "ok", f"nvcc {version} compiled a vector-add kernel and it ran on the GPU: {ran.out.strip()}",
                          nvcc=nvcc, version=version, ran=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check_python(self) -> dict[str, t.Any]:
        env = self.p.get("python_env")
        if not env:
            return result("python", "failed" if self.explicit("python") else "skipped",
                          "No python_env given: name the venv to check with python_env.")
        python = os.path.join(env, "bin", "python")
        if not self.root.is_executable(python.lstrip("/")):
            return result("python", "failed", f"{env} is not a Python environment ({python} is missing). "
                          "Create it (mlinfra.mlhost.python_env) or fix python_env.", env=env)
        drv = self.driver()
        gpu_live = bool(drv["loaded_version"]) and drv["gpus"] > 0
        probe = self.run([python, "-I", "-c", PROBE, self.p.get("framework") or "auto", "1" if gpu_live else "0"],
                         timeout=self.p.get("timeout"))
        if probe is None or probe.rc != 0:
            return result("python", "failed", f"{python} did not run: {_tail(probe.err + probe.out) if probe else 'not found'}", env=env)
        try:
            data = json.loads(probe.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return result("python", "failed", f"{python} printed no probe result: {_tail(probe.out + probe.err)}", env=env)
        framework, version, gpu = data.get("framework"), data.get("version"), data.get("gpu")
        extra = {"env": env, "python_version": data.get("python"), "framework": framework,
                 "framework_version": version, "gpu": gpu}
        if data.get("error"):
            return result("python", "failed", f"{env}: importing {framework} failed: {data['error']}", **extra)
        what = f"{framework} {version or ''}".strip() if framework else "no framework (torch/jax) installed"
        base = f"{env} (Python {data.get('python')}) imports {what}" if framework else f"{env} (Python {data.get('python')}) runs; {what}"
        if gpu_live and framework in ("torch", "jax"):
            if not gpu or not gpu.get("available"):
                hint = (f" (torch built for CUDA {gpu.get('cuda')})" if gpu and gpu.get("cuda") else
                        " (a CPU-only build? set torch_cuda on the env)" if framework == "torch" else "")
                return result("python", "failed", f"{base} but it does not see the GPU{hint}.", **extra)
            uncovered = sorted(set(c for c in gpu.get("capabilities") or [] if not arch_covers(gpu.get("arch_list") or [], c)))
            if framework == "torch" and uncovered and gpu.get("arch_list"):
                return result("python", "failed", f"{base} (CUDA {gpu.get('cuda')}, built for {', '.join(gpu['arch_list'])}) but has "
                              f"no kernels for this host's GPU compute capability {', '.join(uncovered)}. Rebuild the env with "
                              "torch_cuda: auto (it passes over builds without them) or a tag whose builds keep them (cu126).", **extra)
            built = f" (CUDA {gpu['cuda']})" if framework == "torch" and gpu.get("cuda") else ""
            return result("python", "ok", f"{base}{built} and sees {gpu['count']} GPU(s).", **extra)
        if gpu_live and gpu:
            return result("python", "ok", f"{base}; NVML sees {gpu['count']} GPU(s).", **extra)
        if drv["reboot_pending"]:
            return result("python", "ok", f"{base}; GPU not checked: reboot pending (driver installed, not loaded).", **extra)
        return result("python", "ok", base + ".", **extra)

    def check_dcgm_diag(self) -> dict[str, t.Any]:
        """dcgmi diag -r <level> (DCGM's host engine), its result per GPU; a failed or unparsable run is a failed check."""
        level = int(self.p.get("dcgm_diag_level") or 0)
        if not level:
            return result("dcgm_diag", "failed" if self.explicit("dcgm_diag") else "skipped",
                          "dcgm_diag_level is 0: dcgmi diag is not run. Set dcgm_diag_level (1 is the quick test).")
        drv = self.driver()
        if drv["reboot_pending"]:
            return result("dcgm_diag", "reboot_pending", "Not checked: the driver is installed, not loaded (reboot pending).")
        got = self.run(["dcgmi", "diag", "-r", str(level)], timeout=self.p.get("timeout"))
        if got is None:
            return result("dcgm_diag", "failed", "dcgmi is not on PATH: install DCGM (mlhost_dcgm true) or set dcgm_diag_level 0.")
        parsed = _gpu_services.parse_diag(got.out, range(drv["gpus"]))
        if got.rc != 0 and parsed["ok"]:
            parsed["ok"], parsed["error"] = False, f"dcgmi diag exited rc={got.rc}"
        gpus = {str(k): v for k, v in sorted(parsed["gpus"].items())}
        if not parsed["ok"]:
            why = parsed["error"] or "failed on GPU " + ", ".join(k for k, v in gpus.items() if v == "fail")
            return result("dcgm_diag", "failed", f"dcgmi diag -r {level}: {why}. {_tail(got.err + got.out, 3) if not gpus else ''}".strip(),
                          gpus=gpus, level=level)
        return result("dcgm_diag", "ok", f"dcgmi diag -r {level}: {len(gpus)} GPU(s) passed.", gpus=gpus, level=level)

    def check_container(self) -> dict[str, t.Any]:
        """A CUDA container run through CDI (``--device nvidia.com/gpu=all``): the image's nvidia-smi must list every
        GPU. The image must be on the host already (``--pull=never``: air-gapped hosts load it from a file)."""
        image = self.p.get("container_image") or ""
        if not image:
            return result("container", "failed" if self.explicit("container") else "skipped",
                          "No container_image given: no container is run.")
        drv = self.driver()
        if not gpu_host(drv):
            # A fleet-wide image: a CPU host has no GPU container to run.
            return result("container", "failed" if self.explicit("container") else "skipped",
                          "No NVIDIA GPU or driver on this host: no GPU container to run.")
        if drv["reboot_pending"]:
            return result("container", "reboot_pending", "Not checked: the driver is installed, not loaded (reboot pending).")
        wanted = self.p.get("container_engine") or "auto"
        engines = ENGINES if wanted == "auto" else (wanted,)
        engine = next((e for e in engines if self.find(e)), None)
        if engine is None:
            return result("container", "failed", f"No {' or '.join(engines)} on PATH to run {image} with: install the engine "
                          "(mlhost_docker, or the distribution's podman) or leave container_image empty.")
        argv = [engine, "run", "--rm", "--pull=never", "--device", "nvidia.com/gpu=all", image, "nvidia-smi", "-L"]
        got = self.run(argv, timeout=self.p.get("timeout"))
        if got is None:
            return result("container", "failed", f"{engine} could not be run.")
        listed = [line for line in got.out.splitlines() if re.match(r"^GPU [0-9]+: ", line)]
        if got.rc != 0:
            hint = ""
            lowered = (got.err + got.out).lower()
            if "unresolvable cdi devices" in lowered or ("cdi" in lowered and "not found" in lowered):
                hint = " The CDI spec has no nvidia.com/gpu devices: generate it (container_toolkit, mlhost_cdi)."
            elif "no such image" in lowered or "image not known" in lowered or "not found" in lowered:
                hint = f" The image is not on the host: {engine} pull (or load) {image} first."
            return result("container", "failed", f"{engine} run {image} nvidia-smi -L exited rc={got.rc}: "
                          f"{_tail(got.err + got.out, 3)}.{hint}", engine=engine, image=image)
        if len(listed) < drv["gpus"]:
            return result("container", "failed", f"The container saw {len(listed)} GPU(s) of the {drv['gpus']} on the PCI bus.",
                          engine=engine, image=image, gpus=listed)
        return result("container", "ok", f"{engine} ran {image} with {len(listed)} GPU(s) through CDI.",
                      engine=engine, image=image, gpus=listed)

    # --- all of them ---------------------------------------------------------
    def explicit(self, name: str) -> bool:
        return bool(self.p.get("checks")) and name in self.p["checks"]

    def run_all(self) -> dict[str, t.Any]:
        names = list(self.p.get("checks") or self.applicable())
        checks = []
        for name in CHECKS:
            if name in names:
                checks.append(getattr(self, f"check_{name}")())
            elif not self.p.get("checks"):
                checks.append(result(name, "skipped", _SKIP_REASON[name]))
        drv = self.driver()
        failed = [c["name"] for c in checks if c["status"] == "failed"]
        return {
            "checks": checks,
            "failed_checks": failed,
            "reboot_pending": drv["reboot_pending"],
            "driver": {k: drv[k] for k in ("installed_version", "loaded_version")},
            "gpu_count": drv["gpus"],
        }


def gpu_host(drv: dict[str, t.Any]) -> bool:
    """An NVIDIA GPU on the bus, or a driver installed or loaded."""
    return bool(drv["gpus"] or drv["installed_version"] or drv["loaded_version"])


_SKIP_REASON = {
    "nvidia_smi": "No NVIDIA GPU or driver on this host.",
    "gpu_health": "No loaded NVIDIA driver to ask about the GPUs' health.",
    "mig": "No MIG layout, or no loaded NVIDIA driver to ask.",
    "nvcc": "No CUDA toolkit (nvcc) on this host.",
    "python": "No python_env given.",
    "dcgm_diag": "dcgm_diag_level is 0 (dcgmi diag not run).",
    "container": "No container_image given, or no NVIDIA GPU or driver on this host.",
}


def failure_message(outcome: dict[str, t.Any]) -> str:
    parts = [f"{c['name']}: {c['detail']}" for c in outcome["checks"] if c["status"] == "failed"]
    return "Stack check failed - " + " | ".join(parts)


# A framework is auto, torch, jax, none or an importable module name (ASCII identifiers joined by dots).
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_TIMEOUT = 86400
NOTHING = "Nothing was changed."


def _checked_dir(name: str, value: t.Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value or any(c in value for c in "\x00\n\r"):
        raise ModuleError(f"{name} {value!r} is not a plain path (empty, or holds a NUL byte or a line break). "
                          f"Give the absolute path of the directory. {NOTHING}")
    if not value.startswith("/"):
        example = "/usr/local/cuda-12.4" if name == "cuda_home" else "/opt/venvs/torch"
        raise ModuleError(f"{name} {value!r} must be an absolute path (for example {example}). {NOTHING}")


def check_options(params: dict[str, t.Any]) -> None:
    """Refuse bad input before any check runs."""
    checks = params.get("checks") or []
    if "python" in checks and not params.get("python_env"):
        raise ModuleError(f"checks names python but python_env is not set. Set python_env to the venv to check. {NOTHING}")
    _checked_dir("python_env", params.get("python_env"))
    _checked_dir("cuda_home", params.get("cuda_home"))
    expected = params.get("expected_gpus", 0)
    if isinstance(expected, bool) or not isinstance(expected, int) or not 0 <= expected <= 1024:
        raise ModuleError(f"expected_gpus must be a whole number from 0 (not checked) to 1024, got {expected!r}. {NOTHING}")
    level = params.get("dcgm_diag_level", 0)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 4:
        raise ModuleError(f"dcgm_diag_level must be 0 (off) or a dcgmi diag run level 1 to 4, got {level!r}. {NOTHING}")
    image = params.get("container_image") or ""
    if image and (not isinstance(image, str) or not _IMAGE.fullmatch(image)):
        raise ModuleError(f"container_image {str(image)[:80]!r} is not an image reference (letters, digits and ._/:@+- only, "
                          f"at most 255, not starting with -), for example nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04. {NOTHING}")
    timeout = params.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
        raise ModuleError(f"timeout must be at least 1 second and at most {MAX_TIMEOUT}, got {timeout!r}. {NOTHING}")
    layout = params.get("mig_layout") or {}
    if not isinstance(layout, dict) or not all(
            str(k).isdigit() and (v == "disabled" or (isinstance(v, dict) and all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v.values()))) for k, v in layout.items()):
        raise ModuleError("mig_layout must be mig_layout's returned layout: GPU index -> disabled or {profile: count}, "
                          f"got {layout!r}. {NOTHING}")
    framework = params.get("framework")
    if not isinstance(framework, str) or len(framework) > 200 or not (framework in FRAMEWORKS or _MODULE_NAME.fullmatch(framework)):
        raise ModuleError(f"framework {framework!r} is not auto, torch, jax, none or a module name "
                          f"(ASCII letters, digits and _, joined by dots). {NOTHING}")


class StackCheckWorker(Worker):
    """stack_check: the checks are the plan (they read, compile in a temporary directory, never change the host)."""

    def plan(self) -> Plan:
        check_options(self.params)

        def run(argv: list[str], cwd: str | None = None, timeout: int | None = None) -> t.Any:
            return self.runner.run(argv, check=False, cwd=cwd, timeout=timeout)

        outcome = StackCheck(self.host.sysroot, run, self.runner.find, self.params).run_all()
        if outcome["failed_checks"] and self.params.get("fail_on_error", True):
            raise ModuleError(failure_message(outcome), changed=False, **outcome)
        return Plan(changed=False, result=outcome)
