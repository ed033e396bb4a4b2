# SPDX-License-Identifier: GPL-3.0-or-later
"""host_facts end to end on fixture trees: the host states of the issue, one test each."""

from __future__ import annotations

import json

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _host
from ansible_collections.mlinfra.mlhost.plugins.module_utils._distro import SECURE_BOOT_VAR
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import SMI_FIELDS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRun, Link, fixture_text

SMI_QUERY = ("nvidia-smi", "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits")
H200_BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]


def gpu(address, device):
    base = f"sys/bus/pci/devices/{address}"
    return {f"{base}/vendor": "0x10de\n", f"{base}/device": f"0x{device}\n", f"{base}/class": "0x030200\n",
            f"{base}/driver": Link("../../../../bus/pci/drivers/nvidia")}


def host(os_release="debian12", modules="plain", extra=None):
    files = {
        "etc/os-release": fixture_text(f"os-release/{os_release}"),
        "proc/modules": fixture_text(f"proc/modules-{modules}"),
        "proc/sys/kernel/osrelease": "6.1.0-27-amd64\n",
        "proc/sys/kernel/arch": "x86_64\n",
        "proc/1/cgroup": "0::/init.scope\n",
        "sys/bus/pci/devices": None,
        "sys/firmware/acpi": None,
        "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n",
    }
    files.update(extra or {})
    return files


def live(monkeypatch):
    """Treat a fixture tree as the running system, so commands go through the fake door."""
    monkeypatch.setattr(Sysroot, "live", property(lambda self: True))


def gather(path, run=None, environ_path="/nonexistent"):
    facts = _host.gather(Sysroot(str(path)), run or FakeRun(), environ_path)
    json.dumps(facts)  # facts must be plain JSON
    return facts


def test_no_gpu(tree):
    facts = gather(tree(host()))
    assert facts["distro"]["id"] == "debian" and facts["pkg_mgr"] == "apt"
    assert facts["gpus"] == [] and facts["nvidia"]["present"] is False
    assert facts["nvidia"]["smi_status"] == "skipped: no NVIDIA GPU or driver"
    assert facts["nvidia"]["cuda_driver_api"] is None
    assert facts["reboot_required"] is False and facts["reboot_reasons"] == []
    assert facts["secure_boot"] == "disabled" and facts["container"] is None
    assert facts["kernel"] == "6.1.0-27-amd64" and facts["arch"] == "x86_64"


def test_one_h100_driver_580_loaded_with_smi(tree, monkeypatch):
    live(monkeypatch)
    files = host(modules="nvidia", extra={
        **gpu("0000:17:00.0", "2330"),
        "proc/driver/nvidia/version": fixture_text("proc/nvidia-version-580-open"),
        "var/lib/dpkg/status": "Package: nvidia-open\nStatus: install ok installed\nVersion: 580.95.05-1\n\n"
                               "Package: cuda-drivers\nStatus: install ok installed\nVersion: 580.95.05-1\n",
    })
    run = FakeRun({
        SMI_QUERY: (0, fixture_text("smi/h100-580.95.05.csv"), ""),
        ("nvidia-smi",): (0, fixture_text("smi/banner-580.95.05.txt"), ""),
    })
    facts = gather(tree(files), run)
    nv = facts["nvidia"]
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA H100 SXM5 80GB"]
    assert nv["present"] and nv["module_loaded"] and not nv["nouveau_loaded"]
    assert nv["loaded_version"] == nv["installed_version"] == "580.95.05"
    assert nv["loaded_flavor"] == "open"
    assert nv["smi_status"] == "ok" and nv["smi"][0]["pci"] == facts["gpus"][0]["pci"]
    assert nv["smi"][0]["memory_total_mib"] == 81559
    assert nv["cuda_driver_api"] == "13.0" and nv["cuda_driver_api_source"] == "nvidia-smi"
    assert nv["modules"] == ["nvidia", "nvidia_drm", "nvidia_modeset", "nvidia_uvm"]
    assert facts["reboot_required"] is False
    assert list(SMI_QUERY) in run.calls


def test_eight_h200(tree, monkeypatch):
    live(monkeypatch)
    extra = {"proc/driver/nvidia/version": fixture_text("proc/nvidia-version-580-open").replace("580.95.05", "570.172.08")}
    for bus in H200_BUSES:
        extra.update(gpu(f"0000:{bus}:00.0", "2335"))
    run = FakeRun({SMI_QUERY: (0, fixture_text("smi/h200x8-570.172.08.csv"), ""), ("nvidia-smi",): (1, "", "")})
    facts = gather(tree(host(modules="nvidia", extra=extra)), run)
    assert facts["nvidia"]["gpu_count"] == 8 == len(facts["nvidia"]["smi"])
    assert {g["name"] for g in facts["gpus"]} == {"NVIDIA H200 SXM 141GB"}
    assert [g["pci"] for g in facts["gpus"]] == [s["pci"] for s in facts["nvidia"]["smi"]]
    # The banner failed: the CUDA level comes from the toolkit/driver table.
    assert facts["nvidia"]["cuda_driver_api"] == "12.8" and facts["nvidia"]["cuda_driver_api_source"] == "table"


def test_driver_installed_not_loaded_real_debian12_capture(tree, monkeypatch):
    """dpkg status and nvidia-smi output captured in a Debian 12 container after apt-get install nvidia-driver."""
    live(monkeypatch)
    files = host(extra={"var/lib/dpkg/status": fixture_text("dpkg/status-debian12-nvidia-driver")})
    smi_fail = (9, fixture_text("smi/nvidia-smi-no-driver.stdout"), "")
    run = FakeRun({SMI_QUERY: smi_fail, ("nvidia-smi",): smi_fail})
    facts = gather(tree(files), run)
    nv = facts["nvidia"]
    assert nv["installed_version"] == "535.309.01" and nv["loaded_version"] is None
    assert "nvidia-driver" in [p["name"] for p in nv["packages"]]
    assert nv["smi_status"].startswith("failed: rc=9: NVIDIA-SMI has failed")
    assert nv["cuda_driver_api"] == "12.2" and nv["cuda_driver_api_source"] == "table"
    assert facts["reboot_required"] is True
    assert facts["reboot_reasons"] == ["nvidia driver 535.309.01 installed, not loaded"]


def test_550_installed_535_loaded(tree):
    files = host(os_release="debian13", modules="nvidia", extra={
        **gpu("0000:3b:00.0", "26b9"),
        "proc/driver/nvidia/version": fixture_text("proc/nvidia-version-535"),
        "var/lib/dpkg/status": "Package: nvidia-driver\nStatus: install ok installed\nVersion: 550.163.01-2\n",
    })
    facts = gather(tree(files))
    assert facts["reboot_required"] is True
    assert facts["reboot_reasons"] == ["nvidia driver 550.163.01 installed, 535.261.03 loaded"]
    assert facts["nvidia"]["smi_status"] == "skipped: sysroot is not the live system"


def test_nouveau_loaded_beside_installed_driver(tree):
    files = host(modules="nouveau", extra={
        **gpu("0000:01:00.0", "2684"),
        "var/lib/dpkg/status": "Package: nvidia-driver\nStatus: install ok installed\nVersion: 535.261.03-1~deb12u1\n",
    })
    facts = gather(tree(files))
    assert facts["nvidia"]["nouveau_loaded"] is True and facts["nvidia"]["module_loaded"] is False
    assert facts["reboot_reasons"] == [
        "nvidia driver 535.261.03 installed, not loaded",
        "nouveau is loaded while nvidia driver 535.261.03 is installed",
    ]


def test_nouveau_alone_needs_no_reboot(tree):
    facts = gather(tree(host(modules="nouveau", extra=gpu("0000:01:00.0", "2684"))))
    assert facts["nvidia"]["nouveau_loaded"] and not facts["reboot_required"]


def test_secure_boot_on(tree):
    files = host(extra={f"sys/firmware/efi/efivars/{SECURE_BOOT_VAR}": b"\x06\x00\x00\x00\x01"})
    assert gather(tree(files))["secure_boot"] == "enabled"


def test_rocky9_h100_550_via_rpm(tree, monkeypatch):
    live(monkeypatch)
    files = host(os_release="rocky9", modules="nvidia", extra={
        **gpu("0000:17:00.0", "2330"),
        "proc/driver/nvidia/version": fixture_text("proc/nvidia-version-550-rocky"),
        "var/lib/dpkg/status": None,
    })
    del files["var/lib/dpkg/status"]
    rpm_query = ("rpm", "-q", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n",
                 "nvidia-driver", "nvidia-driver-cuda", "cuda-drivers", "nvidia-open", "xorg-x11-drv-nvidia",
                 "kmod-nvidia-latest-dkms", "kmod-nvidia-open-dkms", "akmod-nvidia")
    run = FakeRun({rpm_query: (3, fixture_text("rpm/rocky9-550.54.14.txt"), "")})
    facts = gather(tree(files), run)
    assert facts["distro"]["id"] == "rocky" and facts["pkg_mgr"] == "dnf"
    assert facts["nvidia"]["installed_version"] == "550.54.14" == facts["nvidia"]["loaded_version"]
    assert facts["nvidia"]["package_source"] == "rpm"
    assert facts["gpus"][0]["name"] == "NVIDIA H100 SXM5 80GB"
    assert facts["nvidia"]["cuda_driver_api"] == "12.4"
    assert not facts["reboot_required"]


def test_rocky9_tree_read_with_rpm_root(tree):
    files = host(os_release="rocky9", extra=gpu("0000:17:00.0", "2330"))
    del files["var/lib/dpkg/status"]
    run = FakeRun()
    path = tree(files)
    facts = gather(path, run)
    assert run.calls and run.calls[0][:3] == ["rpm", "--root", str(path)]
    assert facts["nvidia"]["package_source"] == "unavailable"  # no rpm program here: null, not a failure
    assert facts["nvidia"]["installed_version"] is None


def test_ubuntu2404_server_open_driver(tree):
    files = host(os_release="ubuntu2404", modules="nvidia", extra={
        **gpu("0000:00:1e.0", "27b8"),
        "proc/driver/nvidia/version": fixture_text("proc/nvidia-version-580-open").replace("580.95.05", "550.163.01"),
        "var/lib/dpkg/status": (
            "Package: nvidia-driver-550-server-open\nStatus: install ok installed\nVersion: 550.163.01-0ubuntu0.24.04.1\n\n"
            "Package: libnvidia-compute-550-server\nStatus: install ok installed\nVersion: 550.163.01-0ubuntu0.24.04.1\n"
        ),
        "sys/class/dmi/id/sys_vendor": "Amazon EC2\n",
        "run/reboot-required": "*** System restart required ***\n",
        "run/reboot-required.pkgs": "linux-image-6.8.0-49-generic\nlinux-base\n",
    })
    facts = gather(tree(files))
    assert facts["distro"]["codename"] == "noble" and facts["pkg_mgr"] == "apt"
    assert facts["gpus"][0]["name"] == "NVIDIA L4" and facts["virtualization"] == "aws"
    assert facts["nvidia"]["installed_version"] == "550.163.01" == facts["nvidia"]["loaded_version"]
    assert facts["reboot_reasons"] == ["the package manager asks for a reboot (linux-base, linux-image-6.8.0-49-generic)"]


def test_cuda_toolkits_and_conda(tree):
    files = host(extra={
        "usr/local/cuda-12.4/version.json": json.dumps({"cuda": {"name": "CUDA SDK", "version": "12.4.131"}}),
        "usr/local/cuda-12.4/bin/nvcc": "#!/bin/sh\n",
        "usr/local/cuda-11.8/version.json": json.dumps({"cuda": {"version": "11.8.20220929"}}),
        "usr/local/cuda-10.2/version.txt": "CUDA Version 10.2.89\n",
        "usr/local/cuda": Link("cuda-12.4"),
        "opt/miniforge3/conda-meta/history": "",
        "opt/miniforge3/conda-meta/conda-24.11.3-py312h7900ff3_0.json": "{}",
        "opt/miniforge3/conda-meta/mamba-1.5.12-py312h9460a1c_0.json": "{}",
        "opt/miniforge3/bin/conda": "#!/bin/sh\n",
        "opt/miniforge3/envs/torch/conda-meta/history": "",
        "opt/miniforge3/envs/broken": None,
        "home/alice/miniconda3/conda-meta/conda-23.7.4-py311h06a4308_0.json": "{}",
        "home/alice/miniconda3/bin/conda": "#!/bin/sh\n",
    })
    facts = gather(tree(files))
    assert [(tk["version"], tk["full_version"], tk["default"]) for tk in facts["cuda_toolkits"]] == [
        ("10.2", "10.2.89", False), ("11.8", "11.8.20220929", False), ("12.4", "12.4.131", True)]
    assert facts["cuda_toolkits"][2]["nvcc"] == "/usr/local/cuda-12.4/bin/nvcc"
    assert facts["cuda_toolkits"][0]["nvcc"] is None
    assert facts["conda"] == [
        {"prefix": "/opt/miniforge3", "version": "24.11.3", "mamba_version": "1.5.12", "envs": ["torch"]},
        {"prefix": "/home/alice/miniconda3", "version": "23.7.4", "mamba_version": None, "envs": []},
    ]


def test_debian_cuda_toolkit_package(tree):
    files = host(extra={
        "var/lib/dpkg/status": "Package: nvidia-cuda-toolkit\nStatus: install ok installed\nVersion: 11.8.89~11.8.0-5~deb12u1\n",
        "usr/bin/nvcc": "#!/bin/sh\n",
        "usr/lib/nvidia-cuda-toolkit": None,
    })
    toolkits = gather(tree(files))["cuda_toolkits"]
    assert toolkits == [{"version": "11.8", "full_version": "11.8.89", "path": "/usr/lib/nvidia-cuda-toolkit",
                         "nvcc": "/usr/bin/nvcc", "source": "distro", "default": True}]


def test_pythons_in_a_tree_are_not_run(tree):
    files = host(extra={
        "usr/bin/python3.11": "#!/bin/false\n",
        "usr/bin/python3": Link("python3.11"),
        "usr/lib/python3.11/EXTERNALLY-MANAGED": "[externally-managed]\n",
        "usr/local/bin/python3.12": "#!/bin/false\n",
    })
    run = FakeRun()
    facts = gather(tree(files), run)
    assert facts["pythons"] == [
        {"path": "/usr/local/bin/python3.12", "version": "3.12", "externally_managed": False},
        {"path": "/usr/bin/python3", "version": "3.11", "externally_managed": True},
    ]
    assert not [c for c in run.calls if "python" in c[0]]


def test_pythons_live_are_probed_once_each(tree, monkeypatch):
    live(monkeypatch)
    files = host(extra={"usr/bin/python3.11": "#!/bin/false\n", "usr/bin/python3": Link("python3.11"),
                        "usr/bin/python3.9": "#!/bin/false\n"})
    path = tree(files)
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _pyenv

    def probe(p):
        return (p, "-I", "-S", "-c", _pyenv.PROBE)

    run = FakeRun({
        probe("/usr/bin/python3"): (0, '{"version": "3.11.2", "executable": "/usr/bin/python3.11", "externally_managed": true}\n', ""),
        probe("/usr/bin/python3.9"): (127, "", "pyenv: python3.9: command not found"),
    })
    facts = gather(path, run, environ_path="/usr/bin")
    assert facts["pythons"] == [{"path": "/usr/bin/python3", "version": "3.11.2", "externally_managed": True}]


def test_driver_cuda_level_loaded_then_installed(tree):
    loaded = tree(host(modules="nvidia", extra={"proc/driver/nvidia/version": fixture_text("proc/nvidia-version-535")}))
    assert _host.driver_cuda_level(Sysroot(str(loaded)), FakeRun()) == "12.2"


def test_driver_cuda_level_from_rpm_when_not_loaded(tree, monkeypatch):
    live(monkeypatch)
    files = host(os_release="rocky9")
    del files["var/lib/dpkg/status"]
    rpm_query = ("rpm", "-q", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n") + tuple(_nvidia_rpm_names())
    run = FakeRun({rpm_query: (3, fixture_text("rpm/rocky9-550.54.14.txt"), "")})
    assert _host.driver_cuda_level(Sysroot(str(tree(files))), run) == "12.4"


def test_driver_cuda_level_without_a_driver(tree):
    assert _host.driver_cuda_level(Sysroot(str(tree(host()))), FakeRun()) is None


def _nvidia_rpm_names():
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import RPM_DRIVER_PACKAGES

    return RPM_DRIVER_PACKAGES
