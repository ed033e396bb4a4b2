# SPDX-License-Identifier: GPL-3.0-or-later
"""python_env's choice of PyTorch build (torch_cuda: auto), on a STAND-IN of PyTorch's wheel index.

tests/unit/fixtures/torch_index (written by its generate.py) is laid out like https://download.pytorch.org/whl: one
PEP 503 page per build (<tag>/torch/) and one of all builds (torch/), listing stand-in wheel names (no wheel exists);
torch 2.5.1 with cpu, cu118, cu121, cu124; 2.9.1 and 2.13.0 (a stand-in: its builds are not known here) with cpu,
cu126, cu128, cu130. ``mirror/`` holds the cpu and cu126 pages only. The GPUs are host_facts' ``gpus`` entries of the
architectures named; the drivers' CUDA comes from _compat's table, as on a host.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _python_env, _requirements, _torch_wheels, _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from mlhost_testlib import FIXTURES, make_host
# env_on_disk is a pytest fixture the tests below take by name: imported, never called.
from test_python_env import env_on_disk, params, runner_for  # noqa: F401  # pylint: disable=unused-import

INDEX = FIXTURES / "torch_index"
PYTORCH = "https://download.pytorch.org/whl"
GPUS = {"pascal": "Tesla P100", "volta": "Tesla V100", "turing": "Tesla T4", "ampere": "A100", "hopper": "H100",
        "blackwell": "B200"}


def serve(url):
    """host.fetch of the stand-in index at PyTorch's address: a page that is not there fails as a 404 would."""
    assert url.startswith(PYTORCH + "/"), url
    path = INDEX / "whl" / url[len(PYTORCH) + 1:] / "index.html"
    if not path.is_file():
        raise ModuleError(f"Downloading {url} failed: HTTP Error 404: Not Found (HTTP status 404).")
    return path.read_bytes()


def worker(tmp_path, runner, driver, gpus, fetch=serve, machine="x86_64", **overrides):
    cuda = _compat.max_cuda_for_driver(driver) if driver else None
    p = params(tmp_path, **overrides)
    env = _python_env.PythonEnv(make_host(p, runner, True, fetch=fetch), lambda: cuda,
                                lambda: [{"pci": f"0000:{i:02x}:00.0", "name": GPUS[a], "architecture": a} for i, a in enumerate(gpus)])
    env.machine = machine
    return env


def plan_of(tmp_path, driver, gpus, packages, fetch=serve, installed=None, **overrides):
    runner = runner_for(tmp_path, installed or {})
    return worker(tmp_path, runner, driver, gpus, fetch, packages=packages, **overrides).plan()


# The matrix: torch release x driver x the host's oldest GPU -> the build.
@pytest.mark.parametrize("torch, driver, gpu, tag", [
    # torch 2.5.1: no build dropped a GPU; the driver alone decides
    ("2.5.1", "535.261.03", "pascal", "cu121"), ("2.5.1", "550.163.01", "volta", "cu124"),
    ("2.5.1", "570.195.03", "hopper", "cu124"), ("2.5.1", "580.95.05", "blackwell", "cu124"),
    ("2.5.1", "520.61.05", "turing", "cu118"), ("2.5.1", "470.256.02", "ampere", "cpu"),
    # torch 2.9.1: cu128 from Volta, cu130 from Turing (CUDA 13 cannot target older GPUs)
    ("2.9.1", "535.261.03", "ampere", "cpu"), ("2.9.1", "550.163.01", "hopper", "cpu"),
    ("2.9.1", "560.35.03", "pascal", "cu126"), ("2.9.1", "570.195.03", "pascal", "cu126"),
    ("2.9.1", "570.195.03", "volta", "cu128"), ("2.9.1", "570.195.03", "ampere", "cu128"),
    ("2.9.1", "580.95.05", "pascal", "cu126"), ("2.9.1", "580.95.05", "volta", "cu128"),
    ("2.9.1", "580.95.05", "turing", "cu130"), ("2.9.1", "580.95.05", "hopper", "cu130"),
    ("2.9.1", "580.95.05", "blackwell", "cu130"),
    # torch 2.13.0 (newer than the offline table): cu128 from Turing since 2.11; Volta keeps cu126 only
    ("2.13.0", "570.195.03", "volta", "cu126"), ("2.13.0", "570.195.03", "turing", "cu128"),
    ("2.13.0", "580.95.05", "pascal", "cu126"), ("2.13.0", "580.95.05", "volta", "cu126"),
    ("2.13.0", "580.95.05", "ampere", "cu130"), ("2.13.0", "580.95.05", "blackwell", "cu130"),
])
def test_the_build_is_read_from_the_index(tmp_path, env_on_disk, torch, driver, gpu, tag):
    plan = plan_of(tmp_path, driver, [gpu], [f"torch=={torch}"])
    assert plan.result["torch_index"] == tag
    driver_only = plan_of(tmp_path, driver, [], [f"torch=={torch}"]).result["torch_index"]  # no GPU of a known architecture
    # a newer build the driver runs, passed over for the GPU, is said
    assert any("no kernels for compute capability" in w for w in plan.warnings) is (driver_only != tag)


def test_the_oldest_gpu_decides_on_a_mixed_host(tmp_path, env_on_disk):
    assert plan_of(tmp_path, "580.95.05", ["hopper", "volta"], ["torch==2.9.1"]).result["torch_index"] == "cu128"
    assert plan_of(tmp_path, "580.95.05", ["hopper", "ampere"], ["torch==2.9.1"]).result["torch_index"] == "cu130"


@pytest.mark.parametrize("torch", ["2.5.1", "2.9.1", "2.13.0", "2.99.0"])
def test_no_driver_is_cpu_whatever_the_torch_and_nothing_is_fetched(tmp_path, env_on_disk, torch):
    def no_fetch(url):
        raise AssertionError(f"fetched {url}")
    plan = plan_of(tmp_path, None, ["ampere"], [f"torch=={torch}", "torchvision"], fetch=no_fetch)
    assert plan.result["torch_index"] == "cpu"


def test_a_mirror_of_some_builds_is_read_page_by_page(tmp_path, env_on_disk):
    url = (INDEX / "mirror").as_uri()
    plan = plan_of(tmp_path, "580.95.05", ["hopper"], ["torch==2.9.1"], torch_index_url=url)
    assert plan.result["torch_index"] == "cu126"  # the mirror has no cu130 nor cu128 page
    plan = plan_of(tmp_path, "535.261.03", ["hopper"], ["torch==2.9.1"], torch_index_url=url)
    assert plan.result["torch_index"] == "cpu"


def test_the_page_of_all_builds_is_read_once(tmp_path, env_on_disk):
    seen = []
    plan_of(tmp_path, "580.95.05", ["hopper"], ["torch==2.13.0"], fetch=lambda u: seen.append(u) or serve(u))
    assert seen == [f"{PYTORCH}/torch/"]


def test_per_build_pages_when_the_page_of_all_builds_is_missing_newest_first_until_one_fits(tmp_path, env_on_disk):
    seen = []

    def without_all(url):
        seen.append(url)
        if url == f"{PYTORCH}/torch/":
            raise ModuleError(f"Downloading {url} failed: HTTP Error 404: Not Found (HTTP status 404).")
        return serve(url)
    plan = plan_of(tmp_path, "580.95.05", ["volta"], ["torch==2.13.0"], fetch=without_all)
    assert plan.result["torch_index"] == "cu126"
    assert seen == [f"{PYTORCH}/{p}torch/" for p in ("", "cu130/", "cu129/", "cu128/", "cu126/")]


def test_an_unreadable_index_falls_back_to_the_dated_table_or_refuses(tmp_path, env_on_disk):
    seen = []

    def down(url):
        seen.append(url)
        raise ModuleError(f"Downloading {url} failed: <urlopen error [Errno 111] Connection refused> (HTTP status -1).")
    plan = plan_of(tmp_path, "550.163.01", ["ampere"], ["torch==2.5.1"], fetch=down)
    assert plan.result["torch_index"] == "cu124"
    assert seen == [f"{PYTORCH}/torch/"]  # no answer at all: the per-build pages are not tried one by one
    assert any(_compat.TORCH_CUDA_TAGS_CHECKED in w and "could not be read" in w for w in plan.warnings)
    with pytest.raises(ModuleError) as err:
        plan_of(tmp_path, "580.95.05", ["ampere"], ["torch==2.13.0"], fetch=down)
    assert "newer than the offline table" in err.value.msg and "torch_index_url" in err.value.msg


def test_no_wheel_for_this_python_or_machine_is_refused_before_anything_changes(tmp_path, env_on_disk):
    with pytest.raises(ModuleError) as err:
        plan_of(tmp_path, "580.95.05", ["ampere"], ["torch==2.5.1"], python="/usr/bin/python3", machine="riscv64")
    assert "no torch ==2.5.1 wheel for cp311 on Linux riscv64" in err.value.msg and "Nothing was changed" in err.value.msg


def test_aarch64_gets_the_builds_published_for_it(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {})
    env = worker(tmp_path, runner, "580.95.05", ["hopper"], machine="aarch64", packages=["torch==2.9.1"])
    assert env.plan().result["torch_index"] == "cu130"
    env = worker(tmp_path, runner, "570.195.03", ["hopper"], machine="aarch64", packages=["torch==2.9.1"])
    assert env.plan().result["torch_index"] == "cpu"  # no cu128 aarch64 wheel in the stand-in


def test_a_pinned_build_is_taken_as_asked(tmp_path, env_on_disk):
    plan = plan_of(tmp_path, "580.95.05", ["hopper"], ["torch==2.5.1+cu121"], fetch=None)
    assert plan.result["torch_index"] == "cu121"


# --- another build on an existing environment is a change ---------------------------------------------
@pytest.mark.parametrize("installed, options, changed", [
    ("2.5.1+cpu", {}, True),            # auto now resolves to cu124
    ("2.5.1+cu124", {}, False),
    ("2.5.1", {}, True),                # PyPI's default build, not the index's
    ("2.5.1+cu124", {"torch_cuda": "cu121"}, True),
    ("2.5.1+cu124", {"torch_cuda": "cpu"}, True),
    ("2.5.1+cpu", {"torch_cuda": "cpu"}, False),
    ("2.5.1+cpu", {"torch_cuda": "none"}, False),  # none leaves the build alone
])
def test_another_torch_build_is_a_change(tmp_path, env_on_disk, installed, options, changed):
    """The environment was built from this same request (its recorded fingerprint is this plan's): only the build
    installed against the build chosen decides."""
    state = env_on_disk / _venv.STATE_FILE
    state.write_text(json.dumps({"requested_names": ["torch"], "request_salt": "00" * 16}))
    first = worker(tmp_path, runner_for(tmp_path, {"torch": installed}), "550.163.01", ["ampere"], packages=["torch==2.5.1"],
                   **options)
    first.plan()
    probed = first.probe(first.work["path"])["packages"]
    state.write_text(json.dumps({"requested_names": ["torch"], "request_salt": "00" * 16,
                                 "request_sha256": first.work["request"]["sha256"], "installed": probed}))
    plan = plan_of(tmp_path, "550.163.01", ["ampere"], ["torch==2.5.1"], installed={"torch": installed}, **options)
    assert plan.changed is changed
    if changed:
        assert plan.result["upgraded"]["torch"]["from"] == installed and plan.result["action"] == "update"


@pytest.mark.parametrize("tag, ok", [("cu126", True), ("cu132", True), ("cu127", False), ("cu1300", False)])
def test_explicit_tags_the_data_does_not_list_are_taken_when_the_cuda_may_exist(tmp_path, env_on_disk, tag, ok):
    if ok:
        assert plan_of(tmp_path, "580.95.05", ["ampere"], ["torch==2.13.0"], torch_cuda=tag).result["torch_index"] == tag
    else:
        with pytest.raises(ModuleError, match="is not valid"):
            plan_of(tmp_path, "580.95.05", ["ampere"], ["torch==2.13.0"], torch_cuda=tag)


# --- the readers, on hostile pages ---------------------------------------------------------------------
def test_page_files_reads_html_and_json():
    html = ('<a href="/whl/cu128/torch-2.9.1%2Bcu128-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=00">x</a>'
            "<A HREF='../torch-2.9.1+cpu-cp311-cp311-linux_x86_64.whl'>y</A><a name=top>no href</a>")
    assert _torch_wheels.page_files(html) == ["torch-2.9.1+cu128-cp311-cp311-manylinux_2_28_x86_64.whl",
                                              "torch-2.9.1+cpu-cp311-cp311-linux_x86_64.whl"]
    page = {"meta": {"api-version": "1.1"}, "name": "torch",
            "files": [{"filename": "torch-2.13.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl", "url": "x"}, "junk", {}]}
    assert _torch_wheels.page_files(json.dumps(page))[0] == "torch-2.13.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert _torch_wheels.page_files("{not json") == [] and _torch_wheels.page_files("") == []


def test_builds_keeps_the_pinned_torch_for_this_python_and_machine_only():
    _requirements.load_packaging()
    spec = _requirements.packaging_part("specifiers").SpecifierSet("==2.9.1")
    names = _torch_wheels.page_files((INDEX / "whl" / "torch" / "index.html").read_text())
    assert _torch_wheels.builds(names, spec, "cp311", "x86_64") == {"2.9.1": {"cpu", "cu126", "cu128", "cu130"}}
    assert _torch_wheels.builds(names, spec, "cp313", "aarch64") == {"2.9.1": {"cpu", "cu130"}}  # cp313t is not cp313
    assert _torch_wheels.builds(names, spec, "cp38", "x86_64") == {}
    wide = _requirements.packaging_part("specifiers").SpecifierSet("~=2.5.0")
    assert _torch_wheels.builds(names, wide, "cp311", "x86_64") == {"2.5.1": {"cpu", "cu118", "cu121", "cu124"}}
    hostile = ["torch-2.9.1+cu12-cp311-cp311-linux_x86_64.whl", "torch-2.9.1+cu128;rm-cp311-cp311-linux_x86_64.whl",
               "torch-2.9.1+cu128-cp311-cp311-linux_x86_64.whl/../../x", "torch-2.9.1.whl", "torch-２.9.1+cpu-cp311-cp311-linux_x86_64.whl"]
    assert _torch_wheels.builds(hostile, spec, "cp311", "x86_64") == {}


@pytest.mark.parametrize("cuda, first, last", [("12.4", "cu124", "cu110"), ("13.0", "cu130", "cu110"), ("13.2", "cu132", "cu110")])
def test_candidate_tags(cuda, first, last):
    tags = _torch_wheels.candidate_tags(cuda)
    assert tags[0] == first and tags[-1] == last and "cu127" not in tags


@pytest.mark.parametrize("torch, tag, cc", [
    ("2.7", "cu128", (5, 0)), ("2.8", "cu126", (5, 0)), ("2.8", "cu128", (7, 0)), ("2.9", "cu130", (7, 5)),
    ("2.10", "cu128", (7, 0)), ("2.11", "cu128", (7, 5)), ("2.11", "cu126", (5, 0)), ("2.13", "cu132", (7, 5)),
])
def test_torch_build_min_cc(torch, tag, cc):
    assert _compat.torch_build_min_cc(torch, tag) == cc


def test_an_unchanged_rerun_reuses_the_recorded_choice_without_a_fetch(tmp_path, env_on_disk):
    """The environment's state records what auto chose and from what: the same inputs send nothing over the network;
    another driver level asks the index again."""
    first = worker(tmp_path, runner_for(tmp_path, {"torch": "2.5.1+cu124"}), "550.163.01", ["ampere"], packages=["torch==2.5.1"])
    assert first.plan().result["torch_index"] == "cu124"
    (env_on_disk / _venv.STATE_FILE).write_text(json.dumps({"requested_names": ["torch"], "torch_choice": first.torch_choice}))

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"fetched {url}")

    again = worker(tmp_path, runner_for(tmp_path, {"torch": "2.5.1+cu124"}), "550.163.01", ["ampere"], fetch=no_network,
                   packages=["torch==2.5.1"])
    assert again.plan().result["torch_index"] == "cu124"
    newer = worker(tmp_path, runner_for(tmp_path, {"torch": "2.5.1+cu124"}), "580.95.05", ["ampere"], packages=["torch==2.5.1"])
    assert newer.plan().result["torch_index"] == "cu124" and newer.torch_choice["inputs"]["cuda"] == "13.0"
    with pytest.raises(AssertionError, match="fetched"):
        worker(tmp_path, runner_for(tmp_path, {"torch": "2.5.1+cu124"}), "580.95.05", ["pascal"], fetch=no_network,
               packages=["torch==2.5.1"]).plan()
