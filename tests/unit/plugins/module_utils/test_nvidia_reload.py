# SPDX-License-Identifier: GPL-3.0-or-later
"""nvidia_reload on fixture /proc and /sys trees with faked commands.

The trees are HAND-MADE stand-ins (no GPU host was at hand), in the kernel's layout: /proc/modules lines as
tests/unit/fixtures/proc/modules-nvidia, /proc/driver/nvidia/version as the NVRM line the driver prints,
/sys/module/<name>/refcnt and holders/ (symlinks to the dependent modules), /proc/<pid>/fd/<n> symlinks to the
device, /proc/<pid>/comm, cgroup v2 /proc/<pid>/cgroup lines (systemd's system.slice/<unit>, Slurm's
slurmstepd.scope/job_<id>/step_<n>/...). Command output (systemctl is-active, modinfo -F version, modprobe's
"Module nvidia is in use") is written in those tools' formats.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_reload
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_reload import NvidiaReloadWorker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from ansible_collections.mlinfra.mlhost.plugins.modules import nvidia_reload
from mlhost_testlib import FakeRunner, Link, build_tree, make_host, run_worker

OLD, NEW = "535.261.03", "550.163.01"
PROGRAMS = {"modinfo": "/usr/sbin/modinfo", "modprobe": "/usr/sbin/modprobe", "systemctl": "/usr/bin/systemctl"}
UNITS = list(_nvidia_reload.CLIENT_UNITS)
MODULES = """nvidia_uvm 1798144 0 - Live 0x0000000000000000 (O)
nvidia_drm 126976 0 - Live 0x0000000000000000 (O)
nvidia_modeset 1368064 1 nvidia_drm, Live 0x0000000000000000 (O)
nvidia 54181888 {n} nvidia_uvm,nvidia_modeset, Live 0x0000000000000000 (O)
drm_kms_helper 212992 1 nvidia_drm, Live 0x0000000000000000
ext4 1003520 1 - Live 0x0000000000000000
"""


def proc_version(version: str) -> str:
    return (f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Wed Jun 25 19:32:17 UTC 2025\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14+deb12u1) \n")


def host_tree(tmp_path, processes=(), nvidia_refs=None, drm_refs=0, extra=None):
    """A host with one H100 on the PCI bus, driver OLD loaded, and the given processes holding /dev/nvidia*."""
    fd_refs = sum(1 for p in processes for d in p["devices"] if _nvidia_reload.device_module(d) == "nvidia")
    uvm_refs = sum(1 for p in processes for d in p["devices"] if _nvidia_reload.device_module(d) == "nvidia_uvm")
    files = {
        "sys/bus/pci/devices/0000:17:00.0/vendor": "0x10de\n",
        "sys/bus/pci/devices/0000:17:00.0/device": "0x2330\n",
        "sys/bus/pci/devices/0000:17:00.0/class": "0x030200\n",
        "proc/modules": MODULES.format(n=2 + fd_refs),
        "proc/driver/nvidia/version": proc_version(OLD),
        "sys/module/nvidia/version": OLD + "\n",
        "sys/module/nvidia/refcnt": f"{nvidia_refs if nvidia_refs is not None else 2 + fd_refs}\n",
        "sys/module/nvidia/holders/nvidia_uvm": Link("../../nvidia_uvm"),
        "sys/module/nvidia/holders/nvidia_modeset": Link("../../nvidia_modeset"),
        "sys/module/nvidia_modeset/refcnt": "1\n",
        "sys/module/nvidia_modeset/holders/nvidia_drm": Link("../../nvidia_drm"),
        "sys/module/nvidia_drm/refcnt": f"{drm_refs}\n",
        "sys/module/nvidia_drm/holders": None,
        "sys/module/nvidia_uvm/refcnt": f"{uvm_refs}\n",
        "sys/module/nvidia_uvm/holders": None,
        "proc/1/comm": "systemd\n",
        "proc/1/cgroup": "0::/init.scope\n",
        "proc/1/fd/0": Link("/dev/null"),
        "proc/self": Link("1"),
    }
    for proc in processes:
        pid = str(proc["pid"])
        files[f"proc/{pid}/comm"] = proc["comm"] + "\n"
        files[f"proc/{pid}/cgroup"] = proc["cgroup"]
        files[f"proc/{pid}/fd/0"] = Link("/dev/null")
        for n, device in enumerate(proc["devices"], start=3):
            files[f"proc/{pid}/fd/{n}"] = Link(device)
        files[f"proc/{pid}/maps"] = "7f2a1c000000-7f2a1c200000 rw-s 00000000 00:05 1038 /dev/nvidiactl\n"
    files.update(extra or {})
    return build_tree(tmp_path, files)


PERSISTENCED = {"pid": 812, "comm": "nvidia-persiste", "devices": ["/dev/nvidia0", "/dev/nvidiactl"],
                "cgroup": "0::/system.slice/nvidia-persistenced.service\n"}
SLURM_JOB = {"pid": 4711, "comm": "python3", "devices": ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"],
             "cgroup": "0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n"}


class ReloadRunner(FakeRunner):
    """The faked door; ``modprobe nvidia`` writes ``loads`` into the tree's /proc/driver/nvidia/version (a real load
    replaces that file), ``modprobe -r`` empties /proc/modules' nvidia lines."""

    def __init__(self, root, responses, loads=NEW):
        super().__init__(responses, PROGRAMS)
        self.root, self.loads = root, loads

    def run(self, argv, check=True, data=None, timeout=None, env=None, cwd=None):
        done = super().run(argv, check, data, timeout, env, cwd)
        if argv == ["/usr/sbin/modprobe", "nvidia"] and done.rc == 0 and self.loads:
            (self.root / "proc/driver/nvidia/version").write_text(proc_version(self.loads))
        if check and done.rc != 0:
            raise ModuleError(f"{argv} failed", rc=done.rc)
        return done


def responses(active=(), modinfo=NEW, unload_rc=0, load_rc=0):
    answers = {("/usr/sbin/modinfo", "-F", "version", "nvidia"): (0, modinfo + "\n", "") if modinfo else (1, "", "modinfo: ERROR: Module nvidia not found.\n")}
    for unit in UNITS:
        answers[("/usr/bin/systemctl", "is-active", unit)] = (0, "active\n", "") if unit in active else (4 if unit.startswith("dcgm") else 3, "inactive\n", "")
    if active:
        answers[("/usr/bin/systemctl", "stop") + tuple(active)] = (0, "", "")
        answers[("/usr/bin/systemctl", "start") + tuple(active)] = (0, "", "")
    answers[("/usr/sbin/modprobe", "-r", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia")] = (
        (0, "", "") if unload_rc == 0 else (1, "", "modprobe: FATAL: Module nvidia is in use.\n"))
    for name in ("nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset"):
        answers[("/usr/sbin/modprobe", name)] = (load_rc, "", "" if load_rc == 0 else f"modprobe: ERROR: could not insert '{name}'\n")
    return answers


def reload(root, runner, check_mode=False, **params):
    return run_worker(NvidiaReloadWorker, make_host(dict({"installed_version": NEW}, **params), runner, check_mode, Sysroot(str(root))))


MODPROBES = ["/usr/sbin/modprobe -r nvidia_uvm nvidia_drm nvidia_modeset nvidia", "/usr/sbin/modprobe nvidia",
             "/usr/sbin/modprobe nvidia_uvm", "/usr/sbin/modprobe nvidia_drm", "/usr/sbin/modprobe nvidia_modeset"]
IS_ACTIVE = [f"/usr/bin/systemctl is-active {u}" for u in UNITS]


def test_nothing_to_do_when_the_installed_driver_is_loaded(tmp_path):
    root = host_tree(tmp_path)
    result = reload(root, ReloadRunner(root, responses(modinfo=OLD)), installed_version=OLD)
    assert result["state"] == "current" and result["changed"] is False and not result["reboot_required"]
    assert result["commands"] == []
    # Without installed_version, the module file's version is the one to compare with.
    result = reload(root, ReloadRunner(root, responses(modinfo=OLD)), installed_version="")
    assert result["state"] == "current" and result["commands"] == ["/usr/sbin/modinfo -F version nvidia"]


def test_without_kmod_a_reload_cannot_be_done(tmp_path):
    root = host_tree(tmp_path)
    runner = ReloadRunner(root, responses())
    runner.programs = {"systemctl": "/usr/bin/systemctl"}
    result = reload(root, runner)
    assert result["reboot_required"] and result["reasons"] == ["modprobe or modinfo (kmod) is not on the host: the modules cannot be reloaded"]
    result = reload(root, runner, installed_version="")
    assert result["state"] == "no_driver" and not result["reboot_required"]


def test_reload_when_nothing_holds_the_gpu(tmp_path):
    root = host_tree(tmp_path)
    result = reload(root, ReloadRunner(root, responses()))
    assert result["state"] == "reloaded" and result["reloaded"] and result["changed"] and not result["reboot_required"]
    assert result["previous_version"] == OLD and result["loaded_version"] == NEW
    assert result["commands"] == ["/usr/sbin/modinfo -F version nvidia"] + IS_ACTIVE + MODPROBES
    assert result["diff"] == {"before": f"nvidia driver loaded: {OLD}\n", "after": f"nvidia driver loaded: {NEW}\n"}


def test_check_mode_is_the_plan_and_unloads_nothing(tmp_path):
    root = host_tree(tmp_path, [PERSISTENCED])
    result = reload(root, ReloadRunner(root, responses(active=["nvidia-persistenced.service"])), check_mode=True)
    assert result["state"] == "reload" and result["changed"] and not result["reloaded"]
    assert result["stopped_units"] == ["nvidia-persistenced.service"] and result["loaded_version"] == OLD
    assert result["commands"] == ["/usr/sbin/modinfo -F version nvidia"] + IS_ACTIVE


def test_a_process_holding_the_gpu_is_not_killed_and_a_reboot_is_required(tmp_path):
    root = host_tree(tmp_path, [PERSISTENCED, SLURM_JOB])
    before = (root / "proc/driver/nvidia/version").read_text()
    result = reload(root, ReloadRunner(root, responses(active=["nvidia-persistenced.service"])))
    assert result["state"] == "reboot_required" and result["reboot_required"] and result["changed"] is False
    assert [h["pid"] for h in result["holders"]] == [4711] and result["holders"][0]["unit"] is None
    assert result["reasons"] == ["pid 4711 (python3) has /dev/nvidia-uvm, /dev/nvidia0, /dev/nvidiactl open; "
                                 "it is not stopped by this module"]
    # Read-only: no stop, no modprobe, no kill; the persistence daemon is not even stopped.
    assert result["commands"] == ["/usr/sbin/modinfo -F version nvidia"] + IS_ACTIVE
    assert (root / "proc/driver/nvidia/version").read_text() == before


def test_a_client_unit_holding_the_gpu_is_stopped_and_started_again(tmp_path):
    root = host_tree(tmp_path, [PERSISTENCED])
    result = reload(root, ReloadRunner(root, responses(active=["nvidia-persistenced.service"])))
    assert result["state"] == "reloaded" and result["loaded_version"] == NEW and result["holders"] == []
    assert result["commands"] == (["/usr/sbin/modinfo -F version nvidia"] + IS_ACTIVE
                                  + ["/usr/bin/systemctl stop nvidia-persistenced.service"] + MODPROBES
                                  + ["/usr/bin/systemctl start nvidia-persistenced.service"])


def test_a_client_of_a_unit_not_in_clients_is_a_holder(tmp_path):
    dcgm = dict(PERSISTENCED, pid=900, comm="nv-hostengine", cgroup="0::/system.slice/nvidia-dcgm.service\n")
    root = host_tree(tmp_path, [dcgm])
    runner = ReloadRunner(root, {("/usr/sbin/modinfo", "-F", "version", "nvidia"): (0, NEW + "\n", ""),
                                 ("/usr/bin/systemctl", "is-active", "nvidia-persistenced.service"): (3, "inactive\n", "")})
    result = reload(root, runner, clients=["nvidia-persistenced.service"])
    assert result["reboot_required"] and result["reasons"][0].startswith("pid 900 (nv-hostengine, nvidia-dcgm.service) has")


def test_a_failed_verify_fails_with_the_reason_and_the_clients_run_again(tmp_path):
    root = host_tree(tmp_path, [PERSISTENCED])
    runner = ReloadRunner(root, responses(active=["nvidia-persistenced.service"]), loads=None)
    with pytest.raises(ModuleError) as err:
        reload(root, runner)
    assert f"{OLD} is loaded, not the installed {NEW}" in err.value.msg and "reboot the host" in err.value.msg
    assert err.value.details["state"] == "failed" and err.value.details["reboot_required"] is True
    assert err.value.details["reasons"] == [f"after the reload {OLD} is loaded, not {NEW}"]
    assert runner.calls[-1] == ["/usr/bin/systemctl", "start", "nvidia-persistenced.service"]


def test_a_failed_load_names_modprobe_s_message(tmp_path):
    root = host_tree(tmp_path)
    (root / "proc/driver/nvidia/version").write_text("")
    with pytest.raises(ModuleError) as err:
        reload(root, ReloadRunner(root, responses(load_rc=1), loads=None))
    assert "could not insert 'nvidia'" in err.value.msg


def test_an_unload_that_fails_after_the_plan_loads_back_and_asks_for_a_reboot(tmp_path):
    root = host_tree(tmp_path, [PERSISTENCED])
    runner = ReloadRunner(root, responses(active=["nvidia-persistenced.service"], unload_rc=1), loads=None)
    result = reload(root, runner)
    assert result["state"] == "reboot_required" and result["reboot_required"] and not result["reloaded"]
    assert "Module nvidia is in use" in result["reasons"][0]
    assert runner.calls[-1] == ["/usr/bin/systemctl", "start", "nvidia-persistenced.service"]


def test_references_no_process_explains_require_a_reboot(tmp_path):
    # A display server's /dev/dri/card1 is not /dev/nvidia*: only nvidia_drm's reference count shows it.
    root = host_tree(tmp_path, drm_refs=2)
    result = reload(root, ReloadRunner(root, responses()))
    assert result["reboot_required"] and result["reasons"][0].startswith("nvidia_drm has 2 reference(s) that no process")
    assert not any("modprobe" in c for c in result["commands"])


def test_a_module_file_of_another_version_or_none_requires_a_reboot(tmp_path):
    root = host_tree(tmp_path)
    result = reload(root, ReloadRunner(root, responses(modinfo="535.309.01")))
    assert result["reasons"] == [f"the nvidia module modprobe would load for the running kernel is 535.309.01, not the installed {NEW}"]
    result = reload(root, ReloadRunner(root, responses(modinfo="")))
    assert result["reboot_required"] and "not built for it" in result["reasons"][0]


def test_empty_installed_version_takes_the_module_file(tmp_path):
    root = host_tree(tmp_path)
    result = reload(root, ReloadRunner(root, responses()), installed_version="")
    assert result["installed_version"] == NEW and result["state"] == "reloaded"


def test_nouveau_after_a_fresh_install_requires_a_reboot(tmp_path):
    root = host_tree(tmp_path, extra={"proc/modules": "nouveau 2871296 2 - Live 0x0000000000000000\n",
                                      "proc/driver/nvidia/version": "", "sys/module/nvidia/version": ""})
    result = reload(root, ReloadRunner(root, responses()))
    assert result["previous_version"] is None and result["reboot_required"]
    assert result["reasons"][0].startswith("nouveau drives the GPU")


def test_a_fresh_install_with_nothing_loaded_is_loaded(tmp_path):
    root = host_tree(tmp_path, extra={"proc/modules": "ext4 1003520 1 - Live 0x0000000000000000\n",
                                      "proc/driver/nvidia/version": "", "sys/module/nvidia/version": ""})
    result = reload(root, ReloadRunner(root, responses()))
    assert result["state"] == "reloaded" and result["unloaded"] == [] and result["loaded"] == ["nvidia"]
    assert result["commands"][-1] == "/usr/sbin/modprobe nvidia" and not any("-r" in c for c in result["commands"])


def test_no_gpu_on_the_bus_is_nothing_to_load(tmp_path):
    root = host_tree(tmp_path)
    (root / "sys/bus/pci/devices/0000:17:00.0/vendor").write_text("0x8086\n")
    result = reload(root, ReloadRunner(root, responses()))
    assert result["state"] == "no_gpu" and not result["reboot_required"] and result["changed"] is False


@pytest.mark.parametrize("text, unit", [
    ("0::/system.slice/nvidia-persistenced.service\n", "nvidia-persistenced.service"),
    ("12:pids:/system.slice/dcgm.service\n1:name=systemd:/system.slice/dcgm.service\n", "dcgm.service"),
    ("0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n", None),
    ("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-0123abcd.scope\n", None),
    ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/jupyter.service\n", "jupyter.service"),
    ("", None),
])
def test_unit_of_a_process(text, unit):
    assert _nvidia_reload.unit_of(text) == unit


@pytest.mark.parametrize("params, words", [
    ({"installed_version": "550; reboot"}, "is not a driver version"),
    ({"clients": ["nvidia-persistenced.service", "sshd; rm -rf /"]}, "is not a systemd service name"),
    ({"clients": ["nvidia-persistenced"]}, "is not a systemd service name"),
])
def test_bad_options_are_refused_before_anything_runs(tmp_path, params, words):
    root = host_tree(tmp_path)
    runner = ReloadRunner(root, {})
    with pytest.raises(ModuleError) as err:
        reload(root, runner, **params)
    assert words in err.value.msg and runner.calls == []


def test_the_module_refuses_a_bad_version_through_its_argument_spec(capsys):
    with patch_module_args({"installed_version": "latest"}):
        with pytest.raises(SystemExit) as exit_info:
            nvidia_reload.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1 and "'latest' is not a driver version" in result["msg"]
