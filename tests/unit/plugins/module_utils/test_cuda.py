# SPDX-License-Identifier: GPL-3.0-or-later
"""CUDA toolkits assembled from NVIDIA's pip wheels: the version from the nvcc wheel's dist-info, not nvcc (issue 20)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _cuda
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRun, Link, build_tree

NVCC = "\x7fELF fixture nvcc " + "x" * 100 + "\n"
# The head of the real METADATA of nvidia-cuda-nvcc 13.0.88 and the lines of its RECORD that matter.
METADATA = """Metadata-Version: 2.4
Name: nvidia-cuda-nvcc
Version: 13.0.88
Summary: CUDA nvcc
Home-page: https://developer.nvidia.com/cuda-zone
Author: Nvidia CUDA Installer Team

Version: 99.0.0 (the body is no header)
"""


def record(size, name="nvidia_cuda_nvcc-13.0.88.dist-info"):
    return (
        "nvidia/cu13/bin/bin2c,sha256=ijFm4YfUUdo6S_rJJviDvT59R-jvvQ_SpH8aquhN_hE,88848\n"
        f"nvidia/cu13/bin/nvcc,sha256=uOI0fZ1_yt-IEqJzJNUV3pnQM9PkhhGBHs5-ZteJX4o,{size}\n"
        "nvidia/cu13/bin/nvcc.profile,sha256=E1--bYcTJi4RUCrwXRiBi5Bf3k4K_Zf4RSshgoiDd-g,505\n"
        f"{name}/METADATA,sha256=AH7kkgoOlOzuCr4b4CLzmtNWjGs-gdisQbO8yHHnX0o,1788\n"
        f"{name}/RECORD,,\n"
    )


NVCC_OUT = ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2025 NVIDIA Corporation\n"
            "Built on Wed_Aug_20_01:58:59_PM_PDT_2025\nCuda compilation tools, release 13.0, V13.0.88\n"
            "Build cuda_13.0.r13.0/compiler.36424714_0\n")
NVCC_ARGV = ("/usr/local/cuda-13.0/bin/nvcc", "--version")


def wheel_toolkit(extra=None, drop=(), at="usr/local/cuda-13.0/dist-info"):
    """/usr/local/cuda-13.0 as this workstation has it: bin/nvcc from the wheel, dist-info/, no version.json."""
    files = {
        "usr/local/cuda-13.0/bin/nvcc": NVCC,
        "usr/local/cuda-13.0/lib": None,
        "usr/local/cuda": Link("cuda-13.0"),
        f"{at}/nvidia_cuda_nvcc-13.0.88.dist-info/METADATA": METADATA,
        f"{at}/nvidia_cuda_nvcc-13.0.88.dist-info/RECORD": record(len(NVCC)),
        f"{at}/nvidia_cuda_runtime-13.0.96.dist-info/METADATA": "Name: nvidia-cuda-runtime\nVersion: 13.0.96\n",
    }
    files.update(extra or {})
    for name in drop:
        files.pop(name)
    return files


TODAY = [{"version": "13.0", "full_version": "13.0.88", "path": "/usr/local/cuda-13.0", "nvcc": "/usr/local/cuda-13.0/bin/nvcc",
          "source": "nvidia", "default": True}]


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))


def toolkits(path):
    run = FakeRun({NVCC_ARGV: (0, NVCC_OUT, "")})
    return _cuda.cuda_toolkits(Sysroot(str(path)), {}, run), run.calls


def test_the_wheel_version_is_what_nvcc_said(tree, live, tmp_path):
    found, calls = toolkits(tree(wheel_toolkit()))
    assert (found, calls) == (TODAY, [])
    assert _cuda.parse_nvcc_version(NVCC_OUT) == found[0]["full_version"]
    # today's way, the dist-info gone: nvcc runs and says the same
    dist_info = "usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info"
    before = build_tree(tmp_path / "before", wheel_toolkit(drop=[f"{dist_info}/METADATA", f"{dist_info}/RECORD"]))
    assert toolkits(before) == (TODAY, [list(NVCC_ARGV)])


def test_the_dist_info_at_the_toolkit_top(tree, live):
    assert toolkits(tree(wheel_toolkit(at="usr/local/cuda-13.0"))) == (TODAY, [])


def test_a_cu12_wheel(tree, live):
    name = "nvidia_cuda_nvcc_cu12-12.4.131.dist-info"
    files = {
        "usr/local/cuda-12.4/bin/nvcc": NVCC,
        f"usr/local/cuda-12.4/dist-info/{name}/METADATA": "Metadata-Version: 2.1\nName: nvidia-cuda-nvcc-cu12\nVersion: 12.4.131\n",
        f"usr/local/cuda-12.4/dist-info/{name}/RECORD": record(len(NVCC), name).replace("cu13", "cuda_nvcc"),
    }
    found, calls = toolkits(tree(files))
    assert calls == [] and [(tk["version"], tk["full_version"]) for tk in found] == [("12.4", "12.4.131")]


NVCC_ASKED = {
    "nvcc is not the wheel's (another size)": {"usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/RECORD":
                                               record(len(NVCC) + 1)},
    "the RECORD lists no nvcc": {"usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/RECORD":
                                 "nvidia/cu13/bin/bin2c,sha256=x,88848\n"},
    "METADATA says another version": {"usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/METADATA":
                                      METADATA.replace("Version: 13.0.88", "Version: 13.0.89")},
    "METADATA says another name": {"usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/METADATA":
                                   METADATA.replace("Name: nvidia-cuda-nvcc", "Name: nvidia-cuda-nvrtc")},
    "two nvcc dist-infos": {"usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.48.dist-info/METADATA":
                            "Name: nvidia-cuda-nvcc\nVersion: 13.0.48\n"},
    "no METADATA, and a dist-info whose version is not x.y.z": {
        "usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info": None,
        "usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88rc1.dist-info/METADATA": METADATA},
    "nvcc is a link to the wheel's": {"usr/local/cuda-13.0/bin/nvcc": Link("../../nvcc-elsewhere"), "usr/local/nvcc-elsewhere": NVCC},
}


@pytest.mark.parametrize("name", sorted(NVCC_ASKED))
def test_nvcc_is_asked_when_the_dist_info_is_not_sure(tree, live, name):
    extra = NVCC_ASKED[name]
    drop = ["usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/METADATA",
            "usr/local/cuda-13.0/dist-info/nvidia_cuda_nvcc-13.0.88.dist-info/RECORD"] if name.startswith("no METADATA") else []
    path = tree(wheel_toolkit(extra, drop))
    if name.startswith("nvcc is a link"):
        (path / "usr/local/nvcc-elsewhere").chmod(0o755)
        assert toolkits(path) == (TODAY, [])  # the size is the link target's: the same file nvcc --version runs
        return
    found, calls = toolkits(path)
    assert found == TODAY and calls == [list(NVCC_ARGV)]


def test_version_json_comes_first(tree, live):
    found, calls = toolkits(tree(wheel_toolkit({"usr/local/cuda-13.0/version.json": json.dumps({"cuda": {"version": "13.0.1"}})})))
    assert calls == [] and found[0]["full_version"] == "13.0.1"


def test_no_nvcc_no_dist_info_version(tree, live):
    """Without an executable nvcc nothing was asked before, and the dist-info is not read now: the directory's name."""
    found, calls = toolkits(tree(wheel_toolkit(drop=["usr/local/cuda-13.0/bin/nvcc"])))
    assert calls == [] and [(tk["full_version"], tk["nvcc"]) for tk in found] == [("13.0", None)]


def test_an_image_tree_reads_as_before(tree):
    found, calls = toolkits(tree(wheel_toolkit()))
    assert calls == [] and found[0]["full_version"] == "13.0"
