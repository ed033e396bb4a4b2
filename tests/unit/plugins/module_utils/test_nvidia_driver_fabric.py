# SPDX-License-Identifier: GPL-3.0-or-later
"""nvidia_driver's fabric manager and DCGM: which packages a node gets (from its PCI bus), in the driver's transaction,
at exactly the driver's version, and the refusals that name the fix.

The PCI buses are gpu_nodes' hand-made stand-ins (an HGX H100 board, a PCIe L40S node, a GB200 tray, an HGX B200)."""

from __future__ import annotations

import pathlib
import platform

import pytest

import gpu_nodes
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro, _nvidia_driver as nd, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker

from test_nvidia_driver import SOURCES, params  # pylint: disable=wrong-import-order

KEY = fixture_text("openpgp/test-rsa3072-sha512.asc")  # a test key, made for the tests (fixtures/openpgp/README.md)
MIRROR = "https://mirror.example/cuda/debian13/x86_64"


def bus(node):
    """Only the PCI bus of a gpu_nodes tree (its os-release is Ubuntu's)."""
    return {k: v for k, v in getattr(gpu_nodes, node)().items() if k.startswith("sys/")}


@pytest.fixture
def host(tree, monkeypatch, tmp_path):
    def make(node="hgx_h100", release="13", extra=None):
        codename = "bookworm" if release == "12" else "trixie"
        files = {"etc/os-release": fixture_text(f"os-release/debian{release}"), "etc/apt/sources.list": SOURCES.format(c=codename),
                 "proc/modules": "", "usr/bin/dpkg": "", "usr/bin/apt-get": "", "proc/sys/kernel/arch": "x86_64\n",
                 "srv/keys/nvidia.asc": KEY}
        if node:
            files.update(bus(node))
        files.update(extra or {})
        return Sysroot(str(tree(files)))

    monkeypatch.setattr(_packages, "APT_STAMP", str(tmp_path / "stamp"))
    return make


def repo_params(**overrides):
    base = {"branch": "590", "source": "nvidia_repo", "repo_url": MIRROR, "repo_key": "/srv/keys/nvidia.asc",
            "persistence": False, "blacklist_nouveau": False, "exclude_from_automatic_upgrades": False,
            "fabric_manager": "auto", "dcgm": False}
    base.update(overrides)
    return params(**base)


def layout_of(p, root):
    return nd.make_layout(p, root, _distro.distro_facts(root), _packages.Apt(FakeRunner({})), lambda url: b"", "6.12.48+deb13-amd64")


@pytest.mark.parametrize("node, option, fabric, packages", [
    ("hgx_h100", "auto", "fabric_manager", ["nvidia-fabricmanager", "libnvidia-nscq"]),
    ("hgx_h100", False, "none", []),
    ("hgx_h100", "false", "none", []),
    ("pcie_l40s", "auto", "none", []),
    ("pcie_l40s", True, "fabric_manager", ["nvidia-fabricmanager", "libnvidia-nscq"]),
    ("pcie_l40s", "TRUE", "fabric_manager", ["nvidia-fabricmanager", "libnvidia-nscq"]),
    ("hgx_b200", "auto", "fabric_manager_nvlsm", ["nvidia-fabricmanager", "libnvidia-nscq", "nvlsm"]),
    ("gb200", "auto", "imex", ["nvidia-imex"]),
    (None, "auto", "none", []),
])
def test_the_pci_bus_decides_the_fabric_packages(host, node, option, fabric, packages):
    lay = layout_of(repo_params(fabric_manager=option), host(node))
    assert lay.fabric == fabric
    assert list(lay.addons) == packages
    assert all(p in lay.packages for p in packages)
    # Built for one driver version: their candidates must agree with the driver's (NVLSM is not one of them).
    assert [p for p in packages if p in lay.versioned] == [p for p in packages if p != "nvlsm"]
    units = {"none": [], "imex": ["nvidia-imex.service"]}
    assert list(lay.units) == units.get(fabric, ["nvidia-fabricmanager.service"])


def test_before_r580_the_names_carry_the_branch(host):
    lay = layout_of(repo_params(branch="570"), host("hgx_h100"))
    assert list(lay.addons) == ["nvidia-fabricmanager-570", "libnvidia-nscq-570"]


@pytest.mark.parametrize("branch, flavour", [("570", "cuda12"), ("535", "cuda12"), ("590", "cuda13"), ("", "cuda13")])
def test_dcgm_follows_the_drivers_cuda_major(host, branch, flavour):
    lay = layout_of(repo_params(branch=branch, dcgm=True, fabric_manager=False), host("pcie_l40s"))
    assert list(lay.addons) == ["datacenter-gpu-manager-4-core", f"datacenter-gpu-manager-4-{flavour}"]
    assert list(lay.units) == ["nvidia-dcgm.service"]
    assert not set(lay.addons) & set(lay.versioned)  # DCGM's versions are its own


@pytest.mark.parametrize("overrides, words", [
    ({"source": "distro", "branch": "", "repo_url": "", "repo_key": ""}, "carries no NVIDIA fabric manager: use source: nvidia_repo"),
    ({"source": "distro", "branch": "", "repo_url": "", "repo_key": "", "fabric_manager": False, "dcgm": True}, "DCGM is in NVIDIA's CUDA repository"),
    ({"fabric_manager": "sometimes"}, "fabric_manager must be auto, true or false"),
    ({"fabric_manager": "yes\x00; rm -rf /"}, "fabric_manager must be auto, true or false"),
    ({"fabric_manager": ["auto"]}, "fabric_manager must be auto, true or false"),
    ({"branch": "535", "dcgm": False, "fabric_manager": "auto"}, None),
])
def test_refusals_name_the_fix_before_anything_runs(host, overrides, words):
    root = host("hgx_h100")
    runner = FakeRunner({})
    p = repo_params(**overrides)
    if words is None:
        layout_of(p, root)
        return
    with pytest.raises(ModuleError) as err:
        nd.check_options(p)
        layout_of(p, root)
    assert words in str(err.value)
    assert not runner.calls


def test_imex_and_nvlsm_need_new_enough_branches(host):
    with pytest.raises(ModuleError, match="NVLSM"):
        layout_of(repo_params(branch="570"), host("hgx_b200"))
    with pytest.raises(ModuleError, match="IMEX"):
        layout_of(repo_params(branch="535"), host("gb200"))


def test_a_transaction_bringing_another_fabric_manager_version_is_refused(host):
    lay = layout_of(repo_params(), host("hgx_h100"))
    simulated = {"nvidia-open": "590.48.01-1", "nvidia-fabricmanager": "595.45.04-1", "libnvidia-nscq": "590.48.01-1"}
    with pytest.raises(ModuleError) as err:
        nd.refuse_unmatched_addons(lay, simulated, "590.48.01")
    assert "nvidia-fabricmanager 595.45.04-1 with driver 590.48.01" in str(err.value)
    assert "libnvidia-nscq" not in str(err.value)
    nd.refuse_unmatched_addons(lay, dict(simulated, **{"nvidia-fabricmanager": "590.48.01-1"}), "590.48.01")


def test_fabric_manager_added_to_an_installed_driver_comes_at_its_exact_version(host, monkeypatch):
    """An HGX node whose driver 590.48.01 is installed and held (before the collection knew of fabric manager): the plan
    installs fabric manager at 590.48.01-1, not at the repository's newest, holds it, and enables its unit."""
    root = host("hgx_h100")
    for path, body in layout_of(repo_params(), root).files.items():  # NVIDIA's source files already in place
        if body is not None:
            target = pathlib.Path(root.path(path.lstrip("/")))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    monkeypatch.setattr(platform, "release", lambda: "6.12.48+deb13-amd64")
    monkeypatch.setattr(nd.Driver, "today", "2026-12-03")
    lay = layout_of(repo_params(), root)
    driver = ["nvidia-open", "nvidia-driver", "nvidia-kernel-open-dkms", "nvidia-driver-pinning-590"]
    installed = "".join(f"{n}\thi \t{'590-1' if 'pinning' in n else '590.48.01-1'}\n" for n in driver)
    installed += "linux-headers-6.12.48+deb13-amd64\tii \t6.12.48-1\n"
    query = tuple(["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"]
                  + _packages.query_patterns(nd.APT_DRIVER_GLOBS + lay.packages + lay.headers + [lay.pin]))
    policy = "".join(f"{n}:\n  Installed: (none)\n  Candidate: 595.45.04-1\n" for n in ("nvidia-fabricmanager", "libnvidia-nscq"))
    policy += "nvidia-open:\n  Installed: 590.48.01-1\n  Candidate: 590.48.01-1\n"
    apt = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]
    simulation = "".join(f"Inst {n} (590.48.01-1 stand-in [amd64])\n" for n in ("nvidia-fabricmanager", "libnvidia-nscq"))
    specs = ["nvidia-fabricmanager=590.48.01-1", "libnvidia-nscq=590.48.01-1"]
    systemctl = "/usr/bin/systemctl"
    runner = FakeRunner({
        query: (0, installed, ""),
        ("apt-cache", "policy", "nvidia-fabricmanager", "libnvidia-nscq", "nvidia-open"): (0, policy, ""),
        tuple(apt + ["-s", "--no-install-recommends", "install", *specs]): (0, simulation, ""),
        (systemctl, "is-enabled", "nvidia-fabricmanager.service"): (4, "not-found\n", ""),
    }, programs={"systemctl": systemctl})
    result = run_worker(nd.Driver, make_host(repo_params(), runner, check_mode=True, sysroot=root))
    assert result["changed"] is True
    assert result["fabric_service"] == "fabric_manager"
    assert result["addon_packages"] == ["nvidia-fabricmanager", "libnvidia-nscq"]
    assert "install nvidia-fabricmanager libnvidia-nscq" in result["actions"]
    assert "hold libnvidia-nscq nvidia-fabricmanager" in result["actions"]
    assert "enable nvidia-fabricmanager.service" in result["actions"]
    # Not the repository's newest (595.45.04), which would need another driver.
    assert any(call[-2:] == specs for call in runner.calls)


@pytest.mark.parametrize("loaded, installing, enabled, active, expected", [
    # The driver waits for a reboot (none loaded, or another version): enable only, the boot starts it.
    (None, "590.48.01", "disabled", None, [("nvidia-fabricmanager.service", False)]),
    ("580.95.05", "590.48.01", "disabled", None, [("nvidia-fabricmanager.service", False)]),
    # The installed driver is the loaded one: enable and start; a running, enabled unit is left alone.
    ("590.48.01", "590.48.01", "disabled", "inactive", [("nvidia-fabricmanager.service", True)]),
    ("590.48.01", "590.48.01", "enabled", "failed", [("nvidia-fabricmanager.service", True)]),
    ("590.48.01", "590.48.01", "enabled", "active", []),
    (None, "590.48.01", "enabled", None, []),
])
def test_units_are_started_only_beside_their_driver(host, loaded, installing, enabled, active, expected):
    extra = {"proc/driver/nvidia/version": f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {loaded}  Release Build\n"} if loaded else {}
    root = host("hgx_h100", extra=extra)
    systemctl = "/usr/bin/systemctl"
    unit = "nvidia-fabricmanager.service"
    responses = {(systemctl, "is-enabled", unit): (0 if enabled == "enabled" else 1, f"{enabled}\n", "")}
    if active:
        responses[(systemctl, "is-active", unit)] = (0 if active == "active" else 3, f"{active}\n", "")
    driver = nd.Driver(make_host(repo_params(), FakeRunner(responses, programs={"systemctl": systemctl}), sysroot=root))
    steps: list = []
    driver._plan_units([unit], nd.beside_loaded_driver(root, installing), steps)  # pylint: disable=protected-access
    assert [(s["unit"], s["now"]) for s in steps] == expected
