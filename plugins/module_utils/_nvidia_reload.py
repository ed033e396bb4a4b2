# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Load a newly installed NVIDIA driver without a reboot, when nothing holds the old one.

PRIVATE to the collection: no compatibility promise outside it.

The plan reads the host below the Sysroot: the loaded driver (``/proc/driver/nvidia/version``, else
``/sys/module/nvidia/version``), the NVIDIA modules loaded (``/proc/modules``), each one's reference count
(``/sys/module/<name>/refcnt``) and the modules that depend on it (``/sys/module/<name>/holders``), and every
process with an ``/dev/nvidia*`` file open or mapped (``/proc/<pid>/fd``, ``/proc/<pid>/maps``), with its
systemd unit (``/proc/<pid>/cgroup``). The version a load would bring is the one asked for
(``installed_version``) checked against ``modinfo -F version nvidia`` (the module file modprobe would take for the
running kernel).

A process of a known GPU client unit (nvidia-persistenced, DCGM, the fabric manager) that is active is stopped
for the reload and started again after it; any other process holding the GPU is never killed: the plan says a
reboot is required and names it (pid, command, device). So do references no process explains (a display
server on ``/dev/dri``, a kernel user such as nvidia_peermem's peers), nouveau driving the GPU, and a module file
that is not the installed version.

Apply stops the clients, unloads the modules in order (``modprobe -r``), loads ``nvidia`` and the modules that
were loaded before, starts the clients again and reads the loaded version back: another version than the
installed one fails the module with the reason.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

# The GPU clients the collection knows, as systemd units: NVIDIA's persistence daemon, DCGM (its package
# ships nvidia-dcgm.service; older datacenter-gpu-manager packages dcgm.service) and the NVSwitch fabric manager.
CLIENT_UNITS = ("nvidia-persistenced.service", "nvidia-dcgm.service", "dcgm.service", "nvidia-fabricmanager.service")
# Unload order: a module before the modules it uses. nvidia_peermem uses nvidia (and InfiniBand's ib_core).
UNLOAD_ORDER = ("nvidia_peermem", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia")
SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
UNIT_NAME = re.compile(r"[A-Za-z0-9@:._\\-]{1,200}\.service")
_DRIVER_VERSION = re.compile(r"[0-9]{3,}\.[0-9]+(?:\.[0-9]+)?")
NOTHING = "Nothing was changed."


def device_module(device: str) -> str:
    """The module whose reference an open ``/dev/nvidia*`` file holds."""
    name = device[len("/dev/"):]
    if name.startswith("nvidia-uvm"):
        return "nvidia_uvm"
    if name == "nvidia-modeset":
        return "nvidia_modeset"
    return "nvidia"


def unit_of(cgroup_text: str | None) -> str | None:
    """The systemd service a process runs in, from ``/proc/<pid>/cgroup`` (v2 ``0::/...`` or v1 ``name=systemd``)."""
    for line in (cgroup_text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or (parts[1] not in ("", "name=systemd")):
            continue
        for component in reversed(parts[2].strip().split("/")):
            if component.endswith(".service"):
                return component
    return None


def _nvidia_devices_of(root: Sysroot, pid: str) -> list[str]:
    found = set()
    for fd in root.listdir("proc", pid, "fd"):
        target = root.readlink("proc", pid, "fd", fd)
        if target and target.startswith("/dev/nvidia"):
            found.add(target)
    for line in (root.read("proc", pid, "maps", limit=1024 * 1024) or "").splitlines():
        path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) == 6 else ""
        if path.startswith("/dev/nvidia"):
            found.add(path)
    return sorted(found)


def gpu_processes(root: Sysroot) -> list[dict[str, t.Any]]:
    """Every process with an ``/dev/nvidia*`` file open (or mapped): pid, command, devices, systemd unit.

    Processes whose files cannot be read (another user's, without root) are not seen; the reference counts
    catch what they hold."""
    out = []
    for pid in root.listdir("proc"):
        if not pid.isdigit():
            continue
        devices = _nvidia_devices_of(root, pid)
        if devices:
            out.append({"pid": int(pid), "comm": root.read_line("proc", pid, "comm") or "?", "devices": devices,
                        "unit": unit_of(root.read("proc", pid, "cgroup"))})
    return sorted(out, key=lambda p: p["pid"])


def module_refs(root: Sysroot, loaded: list[str]) -> dict[str, dict[str, t.Any]]:
    """For each loaded NVIDIA module: its reference count and the modules that depend on it."""
    refs = {}
    for name in UNLOAD_ORDER:
        if name in loaded:
            count = root.read_line("sys", "module", name, "refcnt")
            refs[name] = {"refcnt": int(count) if count and count.isdigit() else 0,
                          "holders": root.listdir("sys", "module", name, "holders")}
    return refs


def unexplained_refs(refs: dict[str, dict[str, t.Any]], processes: list[dict[str, t.Any]]) -> list[str]:
    """Sentences for modules with more references than their dependent modules and the open files found explain."""
    opened: dict[str, int] = {}
    for proc in processes:
        for device in proc["devices"]:
            opened[device_module(device)] = opened.get(device_module(device), 0) + 1
    out = []
    for name, ref in refs.items():
        extra = ref["refcnt"] - len(ref["holders"]) - opened.get(name, 0)
        if extra > 0:
            out.append(f"{name} has {extra} reference(s) that no process with /dev/nvidia* open and no dependent module "
                       f"({', '.join(ref['holders']) or 'none'}) explains: a display server or console on /dev/dri, "
                       "or another kernel module, uses it")
    return out


def checked_version(value: t.Any) -> str:
    text = "" if value is None else str(value).strip()
    if text and not _DRIVER_VERSION.fullmatch(text):
        raise ModuleError(f"installed_version {text[:80]!r} is not a driver version such as 550.163.01; leave it empty to "
                          f"take the version of the module file modprobe would load. {NOTHING}")
    return text


def checked_clients(value: t.Any) -> list[str]:
    names = list(CLIENT_UNITS if value is None else value)
    bad = [str(n)[:80] for n in names if not isinstance(n, str) or not UNIT_NAME.fullmatch(n)]
    if bad:
        raise ModuleError(f"clients: {', '.join(repr(b) for b in bad)} is not a systemd service name such as "
                          f"nvidia-persistenced.service. {NOTHING}")
    return names


class NvidiaReloadWorker(Worker):
    """nvidia_reload: plan whether the installed driver can replace the loaded one now; apply does it."""

    def plan(self) -> Plan:
        root = self.host.sysroot
        wanted = checked_version(self.params.get("installed_version"))
        clients = checked_clients(self.params.get("clients"))
        self.timeout = int(self.params.get("timeout") or 120)
        loaded_version, dummy = _nvidia.loaded_driver(root)
        modules = _nvidia.loaded_modules(root)
        nvidia_loaded = [m for m in UNLOAD_ORDER if m in modules]
        result: dict[str, t.Any] = {
            "installed_version": wanted or None, "loaded_version": loaded_version, "previous_version": loaded_version,
            "module_file_version": None, "reloaded": False, "reboot_required": False, "reasons": [],
            "holders": [], "stopped_units": [], "unloaded": [], "loaded": [],
        }
        if wanted and loaded_version == wanted:
            return Plan(result=dict(result, state="current"))
        if not _nvidia.pci_gpus(root):
            return Plan(result=dict(result, state="no_gpu", reasons=["no NVIDIA GPU is on the PCI bus: there is nothing to load the driver for"]))
        file_version = self._module_file_version()
        installed = wanted or file_version
        result.update(installed_version=installed or None, module_file_version=file_version)
        if not installed:
            return Plan(result=dict(result, state="no_driver"))
        if loaded_version == installed:
            return Plan(result=dict(result, state="current"))

        processes = gpu_processes(root)
        active = self._active_units(clients)
        holders = [p for p in processes if p["unit"] not in active]
        reasons = self._blockers(installed, file_version, modules, holders, module_refs(root, nvidia_loaded), processes)
        result["holders"] = holders
        if reasons:
            return Plan(result=dict(result, state="reboot_required", reboot_required=True, reasons=reasons))
        steps = {"stop": active, "unload": nvidia_loaded, "load": ["nvidia"] + [m for m in nvidia_loaded if m != "nvidia"],
                 "installed": installed}
        diff = {"before": f"nvidia driver loaded: {loaded_version or 'none'}\n", "after": f"nvidia driver loaded: {installed}\n"}
        return Plan(changed=True, result=dict(result, state="reload", stopped_units=active, unloaded=nvidia_loaded,
                                              loaded=steps["load"]), diff=diff, steps=[steps])

    def _blockers(self, installed: str, file_version: str | None, modules: list[str], holders: list[dict[str, t.Any]],
                  refs: dict[str, dict[str, t.Any]], processes: list[dict[str, t.Any]]) -> list[str]:
        reasons = []
        if "nouveau" in modules:
            reasons.append("nouveau drives the GPU (it cannot be unloaded under a console); the driver blacklists it, a "
                           "reboot takes it out")
        if not self.runner.find("modprobe", SBIN) or not self.runner.find("modinfo", SBIN):
            reasons.append("modprobe or modinfo (kmod) is not on the host: the modules cannot be reloaded")
        elif file_version is None:
            reasons.append(f"modinfo finds no nvidia module for the running kernel: the driver {installed} is not built "
                           "for it (a reboot into a kernel it was built for loads it)")
        elif file_version != installed:
            reasons.append(f"the nvidia module modprobe would load for the running kernel is {file_version}, not the "
                           f"installed {installed}")
        for proc in holders:
            reasons.append(f"pid {proc['pid']} ({proc['comm']}{', ' + proc['unit'] if proc['unit'] else ''}) has "
                           f"{', '.join(proc['devices'])} open; it is not stopped by this module")
        reasons.extend(unexplained_refs(refs, processes))
        return reasons

    def _bin(self, name: str) -> str:
        path = self.runner.find(name, SBIN)
        if not path:
            raise ModuleError(f"{name} is not on the host (looked on PATH and in {', '.join(SBIN)}); install kmod and systemd "
                              f"or reboot to load the driver. {NOTHING}")
        return path

    def _module_file_version(self) -> str | None:
        """The version of the nvidia module file modprobe would load; None without one (or without modinfo, when a
        reload cannot be done either: the blockers then say so)."""
        modinfo = self.runner.find("modinfo", SBIN)
        if not modinfo:
            return None
        done = self.runner.run([modinfo, "-F", "version", "nvidia"], check=False, timeout=self.timeout)
        text = done.out.strip() if done and done.rc == 0 else ""
        return text if _DRIVER_VERSION.fullmatch(text) else None

    def _active_units(self, clients: list[str]) -> list[str]:
        systemctl = self.runner.find("systemctl", SBIN)
        if not systemctl:
            return []
        active = []
        for unit in clients:
            state = self.runner.run([systemctl, "is-active", unit], check=False, timeout=self.timeout)
            if state and (state.out.strip().splitlines() or [""])[0] == "active":
                active.append(unit)
        return active

    def apply(self, plan: Plan) -> dict[str, t.Any]:
        step = plan.steps[0]
        systemctl = self.runner.find("systemctl", SBIN)
        modprobe = self._bin("modprobe")
        if step["stop"]:
            self.runner.run([systemctl, "stop"] + step["stop"], timeout=self.timeout)
        unloaded = self.runner.run([modprobe, "-r"] + step["unload"], check=False, timeout=self.timeout) if step["unload"] else None
        if unloaded is not None and unloaded.rc != 0:
            return self._unload_failed(step, modprobe, systemctl, unloaded)
        loaded = [self.runner.run([modprobe, name], check=False, timeout=self.timeout) for name in step["load"]]
        self._start(systemctl, step["stop"])
        version, dummy = _nvidia.loaded_driver(self.host.sysroot)
        if version != step["installed"]:
            errors = "; ".join((r.err or r.out).strip() for r in loaded if r is not None and r.rc != 0)
            raise ModuleError(
                f"The nvidia driver was reloaded but {version or 'no driver'} is loaded, not the installed {step['installed']}"
                f"{' (modprobe: ' + errors + ')' if errors else ''}. The GPU clients were started again. Look at "
                "'dmesg' for the nvidia module's messages, then reboot the host.",
                state="failed", reloaded=False, reboot_required=True, loaded_version=version,
                reasons=[f"after the reload {version or 'no driver'} is loaded, not {step['installed']}"],
            )
        return {"state": "reloaded", "reloaded": True, "loaded_version": version}

    def _start(self, systemctl: str | None, units: list[str]) -> None:
        if units and systemctl:
            self.runner.run([systemctl, "start"] + units, timeout=self.timeout)

    def _unload_failed(self, step: dict[str, t.Any], modprobe: str, systemctl: str | None, done: t.Any) -> dict[str, t.Any]:
        """Something took the module between the plan and the unload: load back what is missing, start the clients,
        and say that a reboot is required (nothing is killed)."""
        for name in step["load"]:
            self.runner.run([modprobe, name], check=False, timeout=self.timeout)
        self._start(systemctl, step["stop"])
        version, dummy = _nvidia.loaded_driver(self.host.sysroot)
        return {"state": "reboot_required", "reboot_required": True, "loaded_version": version, "unloaded": [],
                "reasons": [f"modprobe -r {' '.join(step['unload'])} failed: {(done.err or done.out).strip()[-500:]}"]}
