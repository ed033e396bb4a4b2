#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_check
short_description: Verify an ML host end to end (nvidia-smi, nvcc compiles a kernel, a Python env sees the GPU)
version_added: 1.0.0
requirements:
  - C(nvidia-smi) for the C(nvidia_smi) check and C(nvcc) (a CUDA toolkit) for the C(nvcc) check, both on the managed
    host
  - the venv of O(python_env) with its framework for the C(python) check
description:
  - Runs the checks named in O(checks) and returns one entry per check with its status.
  - C(nvidia_smi) asks C(nvidia-smi) for its GPUs (CSV query) and the banner's CUDA version.
    When the NVIDIA driver is installed but its kernel module is not loaded (C(nvidia-smi) exits 9,
    "couldn't communicate with the NVIDIA driver", no C(/proc/driver/nvidia/version)) the status is
    V(reboot_pending), not V(failed).
  - C(gpu_health) reads C(nvidia-smi -q) and this boot's kernel log (C(journalctl -k -b), else C(dmesg)), and
    judges every GPU by named checks. C(gpu_count) compares nvidia-smi's GPUs with the PCI bus (and with
    O(expected_gpus)). C(ecc) fails on uncorrectable ECC errors (volatile or aggregate). C(retired_pages) fails on
    pages retired for double-bit errors or a retirement pending, and C(remapped_rows) on a row remapping that is
    pending or failed. C(pcie_link) fails on a link trained below its width (an idle link's lower generation is
    power saving, not a fault). C(persistence_mode) fails when it is off. C(fabric) runs on NVSwitch nodes, where
    the fabric must be Completed/Success. C(xid) fails on Xid codes that mean a GPU fault (48, 61-64, 74, 79, 92,
    94, 95, 119, 120, 140) and lists the others.
  - A health query that fails (nvidia-smi -q exits non-zero, a kernel log that cannot be read, a counter the check
    needs that is not printed) is a failed check, never a healthy one. With the driver installed but not loaded the
    status is V(reboot_pending).
  - C(container) runs O(container_image) with C(--device nvidia.com/gpu=all) (CDI) and checks that the container's
    C(nvidia-smi -L) lists every GPU on the bus.
  - C(mig) lists the GPU instances (C(nvidia-smi mig -lgi)) and compares them, GPU by GPU, with O(mig_layout); a
    query that fails is a failed check.
  - C(nvcc) compiles a small vector-add CUDA program into a temporary directory (removed afterwards)
    and, where an NVIDIA driver is loaded, runs it and checks the sums.
  - C(python) runs the interpreter of the venv O(python_env), imports its framework (O(framework)) and,
    where a GPU and a loaded driver are there, asks the framework whether it sees the GPU
    (C(torch.cuda.is_available()), C(jax.devices()), or NVML through C(nvidia-ml-py)).
  - Never changes the host.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  checks:
    description:
      - The checks to run. When empty, every check that applies to the host runs (C(nvidia_smi) where
        there is an NVIDIA GPU or driver, C(nvcc) where a CUDA compiler is found, C(python) where
        O(python_env) is set) and the others are reported as V(skipped).
      - A check named here that cannot run (no C(nvcc), no O(python_env)) fails.
    type: list
    elements: str
    choices: [nvidia_smi, gpu_health, mig, nvcc, python, dcgm_diag, container]
    default: []
  container_image:
    description:
      - The C(container) check runs this CUDA image with the GPUs through CDI
        (C(<engine> run --rm --pull=never --device nvidia.com/gpu=all <image> nvidia-smi -L)) and fails unless the
        container lists every GPU on the PCI bus. The image must be on the host already (C(--pull=never); an
        air-gapped host loads it with C(docker load) or C(podman load)), and the CDI spec must exist (see
        M(mlinfra.mlhost.container_toolkit)).
      - Empty does not run the check, and neither does a host without an NVIDIA GPU or driver (unless O(checks)
        names C(container)), so one image can be given to a whole fleet.
    type: str
    default: ""
    version_added: 1.0.0
  container_engine:
    description: The engine the C(container) check runs the image with; V(auto) takes C(docker), else C(podman).
    type: str
    choices: [auto, docker, podman]
    default: auto
    version_added: 1.0.0
  dcgm_diag_level:
    description:
      - The C(dcgm_diag) check runs C(dcgmi diag -r <level>) (DCGM's host engine, see the ml_host role's
        C(mlhost_dcgm)) and reports its result per GPU; V(1) is the quick test, V(0) does not run it.
      - A run that fails, exits non-zero, prints no result or no result for a GPU on the bus is a failed check.
    type: int
    default: 0
    version_added: 1.0.0
  expected_gpus:
    description:
      - The number of GPUs the host must have (C(gpu_health)'s C(gpu_count) check). V(0) only checks that
        nvidia-smi lists every NVIDIA GPU on the PCI bus.
    type: int
    default: 0
  mig_layout:
    description:
      - The MIG layout the GPUs must show (the C(layout) M(mlinfra.mlhost.mig_layout) returns, GPU index to
        V(disabled) or profile counts). Empty skips the C(mig) check.
    type: dict
    default: {}
    version_added: 1.0.0
  python_env:
    description: The path of a virtual environment (made by M(mlinfra.mlhost.python_env) or otherwise) to check.
    type: path
  framework:
    description:
      - What the C(python) check imports. V(auto) imports C(torch) or C(jax), whichever is installed
        (neither is fine); V(none) only runs the interpreter; any other value is a module name to import.
    type: str
    default: auto
  cuda_home:
    description:
      - The CUDA toolkit whose C(bin/nvcc) the C(nvcc) check uses. Default is C(nvcc) on C(PATH), then
        C(/usr/local/cuda/bin/nvcc).
    type: path
  timeout:
    description: Seconds after which a compile, the kernel run or the Python probe is stopped.
    type: int
    default: 300
  fail_on_error:
    description:
      - Fail the module when a check has the status V(failed). V(reboot_pending) and V(skipped) never fail.
      - With V(false) the module always succeeds and returns the checks, for a report.
    type: bool
    default: true
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads and compiles into a temporary directory; check mode runs the same checks.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes the host; C(changed) is always V(false).
seealso:
  - module: mlinfra.mlhost.host_facts
  - module: mlinfra.mlhost.python_env
"""

EXAMPLES = r"""
- name: Check everything that applies to this host
  mlinfra.mlhost.stack_check:
    python_env: /opt/mlhost/venvs/default

- name: Check that CUDA 12.4's nvcc compiles, and that the torch env sees the GPU
  mlinfra.mlhost.stack_check:
    checks: [nvcc, python]
    cuda_home: /usr/local/cuda-12.4
    python_env: /opt/envs/torch
    framework: torch

- name: An HGX node must show 8 healthy GPUs and its NVSwitch fabric up
  mlinfra.mlhost.stack_check:
    checks: [nvidia_smi, gpu_health]
    expected_gpus: 8

- name: Collect the checks for a report without failing
  mlinfra.mlhost.stack_check:
    fail_on_error: false
  register: stack
"""

RETURN = r"""
checks:
  description:
    - One entry per check, in the order nvidia_smi, gpu_health, mig, nvcc, python, dcgm_diag, container.
    - C(status) is V(ok), V(failed), V(skipped) or V(reboot_pending); C(ok) is false only for V(failed).
    - Checks add their own keys (C(gpus) for nvidia_smi, C(nvcc), C(version) and C(ran) for nvcc,
      C(env), C(framework), C(framework_version) and C(gpu) for python, C(health) for gpu_health, the named checks,
      each with C(name), C(ok), C(detail) and per GPU C(gpus) (C(pci), C(ok), C(detail)), the Xid lines in C(xids)).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: nvidia_smi, ok: true, status: reboot_pending,
       detail: "NVIDIA driver 535.261.03 is installed but not loaded ... Reboot the host to load it."}
    - {name: nvcc, ok: true, status: ok, detail: "nvcc 11.8.89 compiled a vector-add kernel; not run (reboot pending ...)."}
    - {name: python, ok: true, status: ok, detail: "/opt/mlhost/venvs/default (Python 3.11.2) runs; no framework (torch/jax) installed."}
failed_checks:
  description: Names of the checks whose status is V(failed).
  returned: always
  type: list
  elements: str
  sample: []
reboot_pending:
  description: True when an NVIDIA driver is installed and not loaded.
  returned: always
  type: bool
  sample: true
driver:
  description: The installed (package database) and loaded (C(/proc/driver/nvidia/version)) driver versions.
  returned: always
  type: dict
  sample: {installed_version: "535.261.03", loaded_version: null}
gpu_count:
  description: NVIDIA GPUs on the PCI bus.
  returned: always
  type: int
  sample: 0
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._stack_check import CHECKS, StackCheckWorker

ARGUMENT_SPEC = {
    "checks": {"type": "list", "elements": "str", "choices": list(CHECKS), "default": []},
    "python_env": {"type": "path"},
    "framework": {"type": "str", "default": "auto"},
    "cuda_home": {"type": "path"},
    "timeout": {"type": "int", "default": 300},
    "expected_gpus": {"type": "int", "default": 0},
    "dcgm_diag_level": {"type": "int", "default": 0},
    "container_image": {"type": "str", "default": ""},
    "container_engine": {"type": "str", "choices": ["auto", "docker", "podman"], "default": "auto"},
    "mig_layout": {"type": "dict", "default": {}},
    "fail_on_error": {"type": "bool", "default": True},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, StackCheckWorker)


if __name__ == "__main__":
    main()
