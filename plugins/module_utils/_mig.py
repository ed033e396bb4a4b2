# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""MIG layouts: checked against each GPU's profiles, written for NVIDIA's nvidia-mig-manager service, verified.

PRIVATE to the collection: no compatibility promise outside it.

The layout is a mapping from a GPU selector (``all``, a PCI device id ``2330`` / ``10de:2330``, a GPU name as
host_facts reports it, or a PCI address ``0000:17:00.0``; the most specific wins) to ``disabled``, ``enabled``
(MIG mode on, no instances) or a mapping of MIG profile to count (``{"1g.10gb": 7}``).

The plan resolves the layout for every GPU on the host (host_facts' ``gpus``, in PCI address order: the order
nvidia-smi numbers them by default), checks each profile against the GPU's own (the table below, or a warning for a
MIG-capable GPU the table does not list), checks the counts (each profile's maximum, the GPU's compute and memory
slices, one media-extension instance), and refuses a layout for a GPU without MIG. It writes, only when they
differ, the collection's own nvidia-mig-parted config (``version: v1``, one config named ``mlhost``) and a systemd
drop-in for ``nvidia-mig-manager.service`` that points the service at it (``MIG_PARTED_CONFIG_FILE``,
``MIG_PARTED_SELECTED_CONFIG``); the package's own ``config.yaml``, ``hooks.yaml`` and ``override.conf`` are never
edited. With the driver loaded, ``nvidia-mig-parted assert`` says whether the layout is in place; when it is not
(or the config changed), apply restarts the oneshot service, which applies the layout with NVIDIA's hooks (they
stop and start the GPU clients around a GPU reset), and asserts again.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._gpu_ids import NVIDIA_GPUS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker

NOTHING = "Nothing was changed."
CONFIG_NAME = "mlhost"
CONFIG_PATH = "/etc/nvidia-mig-manager/mlhost-config.yaml"
# systemd reads a unit's drop-ins in lexical order and the last Environment= of a variable wins: the package's own
# conffile is override.conf, so the collection's drop-in must sort after it.
DROPIN_PATH = "/etc/systemd/system/nvidia-mig-manager.service.d/zz-mlhost.conf"
SERVICE = "nvidia-mig-manager.service"
UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")
PROGRAM_DIRS = ["/usr/bin", "/usr/local/bin", "/usr/sbin"]

# MIG profiles per GPU, from NVIDIA's MIG User Guide ("Supported MIG Profiles"), checked 2026-12-03:
# profile -> (compute slices, memory slices, most instances on one GPU). The GPUs of one generation share a shape:
# 1g (1/8 of the memory), its +me twin (media engines, one per GPU), 1g with twice the memory, 2g, 3g, 4g, 7g.
PROFILES_CHECKED = "2026-12-03"


def _seven_slice(small: int, double: int, half: int, whole: int) -> dict[str, tuple[int, int, int]]:
    return {
        f"1g.{small}gb": (1, 1, 7),
        f"1g.{small}gb+me": (1, 1, 1),
        f"1g.{double}gb": (1, 2, 4),
        f"2g.{double}gb": (2, 2, 3),
        f"3g.{half}gb": (3, 4, 2),
        f"4g.{half}gb": (4, 4, 1),
        f"7g.{whole}gb": (7, 8, 1),
    }


_A30 = {"1g.6gb": (1, 1, 4), "1g.6gb+me": (1, 1, 1), "2g.12gb": (2, 2, 2), "2g.12gb+me": (2, 2, 1), "4g.24gb": (4, 4, 1)}
# (profiles, compute slices, memory slices) per PCI device id.
GPU_PROFILES: dict[str, tuple[dict[str, tuple[int, int, int]], int, int]] = {
    **{d: (_seven_slice(5, 10, 20, 40), 7, 8) for d in ("20b0", "20b1", "20f1", "20bd", "20f6")},  # A100/A800 40GB
    **{d: (_seven_slice(10, 20, 40, 80), 7, 8) for d in ("20b2", "20b5", "20f3", "20f5")},  # A100/A800 80GB
    "20b7": (_A30, 4, 4),  # A30 24GB
    **{d: (_seven_slice(10, 20, 40, 80), 7, 8) for d in ("2330", "2331")},  # H100 80GB, SXM5 and PCIe
    **{d: (_seven_slice(12, 24, 47, 94), 7, 8) for d in ("2321", "2339")},  # H100 NVL and H100 SXM5 94GB
    **{d: (_seven_slice(18, 35, 71, 141), 7, 8) for d in ("2335", "233b")},  # H200 141GB, SXM and NVL
    "2901": (_seven_slice(23, 45, 90, 180), 7, 8),  # B200 180GB
}
# GPUs that have MIG but whose profiles the table above does not hold (memory sizes not confirmed): a layout for
# them is written with a warning, and nvidia-mig-parted checks it on the host.
MIG_UNTABLED = frozenset("20b3 20b8 20b9 2322 2324 2329 2336 233d 2342 2348 2941 29bc 3182 2bb1 2bb4 2bb5".split())
MIG_ARCHITECTURES = frozenset(("ampere", "hopper", "blackwell"))

PROFILE_NAME = re.compile(r"[1-9]g\.[0-9]{1,4}gb(?:[+-][a-z]{1,8}(?:\.[a-z]{1,8})?)?")
PCI_ADDRESS = re.compile(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
DEVICE_ID = re.compile(r"(?:10de:)?([0-9a-f]{4})")
KNOWN_NAMES = frozenset(name.lower() for name, dummy in NVIDIA_GPUS.values())


def _problem(text: str) -> ModuleError:
    return ModuleError(f"{text} {NOTHING}")


def checked_layout(value: t.Any) -> dict[str, t.Any]:
    """The layout option as {selector (lower case): 'disabled' | 'enabled' | {profile: count}}, or a refusal."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _problem(f"layout must be a mapping of GPU (all, a device id, a GPU name or a PCI address) to a MIG layout, "
                       f"got {type(value).__name__} {value!r}. Example: {{all: {{'1g.10gb': 7}}}}.")
    out: dict[str, t.Any] = {}
    for raw_key, raw in value.items():
        key = str(raw_key).strip().lower()
        if not key or len(key) > 120 or any(ord(c) < 32 for c in key):
            raise _problem(f"layout key {raw_key!r} is not a GPU selector: use all, a PCI device id (2330), a GPU name "
                           "(NVIDIA H100 SXM5 80GB) or a PCI address (0000:17:00.0).")
        if key in out:
            raise _problem(f"layout names GPU {raw_key!r} twice (keys are compared without case). Keep one entry.")
        out[key] = _checked_value(str(raw_key), raw)
    return out


def _checked_value(key: str, raw: t.Any) -> t.Any:
    if raw is False or (isinstance(raw, str) and raw.strip().lower() == "disabled"):
        return "disabled"
    if isinstance(raw, str) and raw.strip().lower() == "enabled":
        return "enabled"
    if not isinstance(raw, dict):
        raise _problem(f"layout[{key!r}] must be disabled, enabled or a mapping of MIG profile to count "
                       f"({{'1g.10gb': 7}}), got {type(raw).__name__} {raw!r}.")
    if not raw:
        return "enabled"
    counts: dict[str, int] = {}
    for profile, count in raw.items():
        name = str(profile).strip()
        if not PROFILE_NAME.fullmatch(name):
            raise _problem(f"layout[{key!r}] has {profile!r}, which is not a MIG profile name (like 1g.10gb, 3g.40gb, "
                           "1g.10gb+me).")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1 or count > 7:
            raise _problem(f"layout[{key!r}][{name!r}] must be a whole number of instances from 1 to 7, got {count!r}.")
        counts[name] = count
    return counts


def _selector_kind(key: str, gpus: list[dict[str, t.Any]]) -> str:
    if key == "all":
        return "all"
    if PCI_ADDRESS.fullmatch(key):
        return "pci"
    if DEVICE_ID.fullmatch(key):
        return "device"
    if key in KNOWN_NAMES or any(str(g.get("name") or "").lower() == key for g in gpus):
        return "name"
    raise _problem(f"layout key {key!r} is neither all, a PCI device id (2330 or 10de:2330), a PCI address "
                   "(0000:17:00.0) nor a GPU name the collection or this host knows (as host_facts names it: "
                   "NVIDIA H100 SXM5 80GB). Check its spelling.")


def resolve(layout: dict[str, t.Any], gpus: list[dict[str, t.Any]]) -> list[tuple[dict[str, t.Any], str | None, t.Any]]:
    """Each GPU (in PCI address order) with the key that selects it and its layout (None, None where no key does),
    the most specific key winning."""
    kinds = {key: _selector_kind(key, gpus) for key in layout}
    rank = {"pci": 0, "device": 1, "name": 2, "all": 3}
    out = []
    for gpu in sorted(gpus, key=lambda g: str(g.get("pci") or "")):
        device = str(gpu.get("device_id") or "").lower()
        chosen, chosen_key = None, None
        for key in sorted(layout, key=lambda k: rank[kinds[k]]):
            kind = kinds[key]
            if (kind == "all" or (kind == "pci" and key == str(gpu.get("pci") or "").lower())
                    or (kind == "device" and DEVICE_ID.fullmatch(key).group(1) == device)  # type: ignore[union-attr]
                    or (kind == "name" and key == str(gpu.get("name") or "").lower())):
                chosen, chosen_key = layout[key], key
                break
        out.append((gpu, chosen_key, chosen))
    return out


def mig_capable(gpu: dict[str, t.Any]) -> bool | None:
    """True/False from the tables; None for an id the collection does not know."""
    device = str(gpu.get("device_id") or "").lower()
    if device in GPU_PROFILES or device in MIG_UNTABLED:
        return True
    return False if device in NVIDIA_GPUS else None


def check_gpu(index: int, gpu: dict[str, t.Any], wanted: t.Any, explicit: bool) -> list[str]:
    """Refuse what cannot work on this GPU; returns warnings."""
    label = f"GPU {index} ({gpu.get('name') or 'unknown'}, {gpu.get('pci')})"
    capable = mig_capable(gpu)
    if capable is False:
        if explicit and wanted != "disabled":
            raise _problem(f"The MIG layout asks for {label}, which has no MIG (MIG is on A100, A30, H100, H200, B200 and "
                           "their relatives). Remove that entry, or narrow the key to the GPUs that have MIG.")
        return []
    warnings = []
    if capable is None:
        warnings.append(f"{label} is a GPU id the collection does not know; its MIG layout is passed to nvidia-mig-parted, "
                        "which checks it on the host.")
    if not isinstance(wanted, dict):
        return warnings
    device = str(gpu.get("device_id") or "").lower()
    if device not in GPU_PROFILES:
        if capable:
            warnings.append(f"The MIG profiles of {label} are not in the collection's table (checked {PROFILES_CHECKED}); "
                            "nvidia-mig-parted checks its layout on the host.")
        return warnings
    profiles, compute, memory = GPU_PROFILES[device]
    used_compute = used_memory = media = 0
    for name, count in wanted.items():
        if name not in profiles:
            raise _problem(f"{label} has no MIG profile {name!r}; its profiles are {', '.join(profiles)} (NVIDIA's MIG "
                           f"User Guide, checked {PROFILES_CHECKED}).")
        c, m, most = profiles[name]
        if count > most:
            raise _problem(f"{label} takes at most {most} instance(s) of {name}, the layout asks for {count}.")
        used_compute += c * count
        used_memory += m * count
        media += count if "+me" in name else 0
    if media > 1:
        raise _problem(f"{label}: the layout asks for {media} media-extension (+me) instances; a GPU has one.")
    if used_compute > compute or used_memory > memory:
        raise _problem(f"The MIG layout of {label} needs {used_compute} compute and {used_memory} memory slices; the GPU has "
                       f"{compute} and {memory}. Ask for fewer or smaller instances.")
    return warnings


def render_config(entries: list[tuple[list[int], t.Any]], gpu_count: int) -> str:
    """The nvidia-mig-parted config (``version: v1``), one config named mlhost; JSON-quoted scalars are YAML too."""
    lines = [
        f"{_ownership.TEXT_MARKER} (mig_layout): the MIG layout nvidia-mig-manager.service applies, selected by",
        f"# {DROPIN_PATH}. Change mlhost_mig_layout, not this file.",
        "version: v1",
        "mig-configs:",
        f"  {CONFIG_NAME}:",
    ]
    for devices, wanted in entries:
        shown = "all" if len(devices) == gpu_count else "[" + ", ".join(str(d) for d in devices) + "]"
        lines.append(f"    - devices: {shown}")
        lines.append(f"      mig-enabled: {'false' if wanted == 'disabled' else 'true'}")
        if wanted != "disabled":
            counts = wanted if isinstance(wanted, dict) else {}
            if counts:
                lines.append("      mig-devices:")
                lines.extend(f"        {json.dumps(name)}: {count}" for name, count in sorted(counts.items()))
            else:
                lines.append("      mig-devices: {}")
    return "\n".join(lines) + "\n"


def render_dropin(config_path: str) -> str:
    return (f"{_ownership.TEXT_MARKER} (mig_layout): point NVIDIA's MIG manager at the collection's layout.\n"
            "# It sorts after the package's override.conf, so these settings win. Change mlhost_mig_layout, not this file.\n"
            "[Service]\n"
            f'Environment="MIG_PARTED_CONFIG_FILE={config_path}"\n'
            f'Environment="MIG_PARTED_SELECTED_CONFIG={CONFIG_NAME}"\n')


# nvidia-smi mig -lgi: "|   0  MIG 1g.10gb          19        7          0:1     |"
_LGI_ROW = re.compile(r"^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+):(\d+)\s+\|\s*$")


def parse_lgi(text: str) -> dict[int, dict[str, int]]:
    """GPU index -> {profile: instances} from ``nvidia-smi mig -lgi``; {} when it lists none ("No GPU instances")."""
    out: dict[int, dict[str, int]] = {}
    for line in text.splitlines():
        match = _LGI_ROW.match(line.rstrip())
        if match:
            counts = out.setdefault(int(match.group(1)), {})
            counts[match.group(2)] = counts.get(match.group(2), 0) + 1
    return out


def compare_lgi(expected: dict[int, dict[str, int]], found: dict[int, dict[str, int]]) -> list[str]:
    """The GPUs whose GPU instances differ from the layout, as readable lines."""
    def shown(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} x{k}" for n, k in sorted(counts.items())) or "none"

    problems = []
    for index in sorted(set(expected) | set(found)):
        want, have = expected.get(index, {}), found.get(index, {})
        if want != have:
            problems.append(f"GPU {index}: MIG instances {shown(have)}, the layout wants {shown(want)}")
    return problems


class MigLayoutWorker(Worker):
    """mig_layout: plan the config and drop-in and whether the layout is in place; apply writes and applies."""

    def plan(self) -> Plan:
        root = self.host.sysroot
        layout = checked_layout(self.params.get("layout"))
        gpus = self.params.get("gpus") or []
        if not isinstance(gpus, list) or not all(isinstance(g, dict) for g in gpus):
            raise _problem("gpus must be the list host_facts returns (ansible_facts.mlhost.gpus).")
        resolved = resolve(layout, gpus)
        warnings: list[str] = []
        entries: list[tuple[list[int], t.Any]] = []
        expected: dict[int, dict[str, int]] = {}
        for index, (gpu, key, wanted) in enumerate(resolved):
            if wanted is None:
                continue
            warnings += check_gpu(index, gpu, wanted, key != "all")
            if mig_capable(gpu) is False:
                continue
            expected[index] = dict(wanted) if isinstance(wanted, dict) else {}
            for devices, other in entries:
                if other == wanted:
                    devices.append(index)
                    break
            else:
                entries.append(([index], wanted))
        result: dict[str, t.Any] = {"config_path": CONFIG_PATH, "dropin_path": DROPIN_PATH, "layout": {
            str(i): ("disabled" if w == "disabled" else (w if isinstance(w, dict) else {})) for i, (g, k, w) in enumerate(resolved)
            if w is not None and mig_capable(g) is not False}, "applied": None, "mig_instances": None}
        if not entries:
            result["state"] = "no_layout"
            return Plan(False, result, warnings=warnings)
        program = self.runner.find("nvidia-mig-parted", PROGRAM_DIRS)
        unit = next((d for d in UNIT_DIRS if root.exists(d, SERVICE)), None)
        if (not program or not unit) and not self.params.get("require_manager", True):
            result["state"] = "manager_missing"
            return Plan(True, result, warnings=warnings + [
                "The MIG manager (nvidia-mig-manager) is not installed yet; the layout was checked and is written once it is."])
        if not program or not unit:
            raise _problem("A MIG layout needs NVIDIA's MIG manager (the nvidia-mig-manager package: nvidia-mig-parted and "
                           f"{SERVICE}), which is not installed here. Install it from your mirror of NVIDIA's "
                           "mig-parted releases (mlhost_mig_manager_package), or leave mlhost_mig_layout empty.")
        config = render_config(entries, len(resolved))
        dropin = render_dropin(CONFIG_PATH)
        files = []
        for path, body, what in ((CONFIG_PATH, config, "MIG config"), (DROPIN_PATH, dropin, "MIG manager drop-in")):
            real = root.path(path.lstrip("/"))
            if not _ownership.text_is_owned(real):
                raise _problem(f"The {what} {path} exists and was not written by the collection, so it is left alone. "
                               "Move it away if it is yours to replace.")
            if _files.differs(real, body):
                files.append((real, body))
        applied = None
        if not files and root.exists("proc", "driver", "nvidia", "version"):
            done = self.runner.run([program, "assert", "-f", root.path(CONFIG_PATH.lstrip("/")), "-c", CONFIG_NAME], check=False)
            applied = bool(done is not None and done.rc == 0)
        result.update(applied=applied, state="applied" if applied else ("written" if not files else "changed"))
        changed = bool(files) or applied is False
        diff = [{"before_header": p, "after_header": p, "before": (_files.read_bytes(p) or b"").decode("utf-8", "replace"),
                 "after": b} for p, b in files]
        loaded = root.exists("proc", "driver", "nvidia", "version")
        return Plan(changed, result, diff=diff or None,
                    steps=[{"files": files, "program": program, "restart": bool(self.params.get("apply", True)) and loaded}],
                    warnings=warnings)

    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        step = plan.steps[0]
        for path, body in step["files"]:
            _files.atomic_write(path, body, 0o644)
        self._systemctl(["daemon-reload"], "reload systemd's units")
        self._systemctl(["enable", SERVICE], f"enable {SERVICE}")
        if not step["restart"]:
            return {"state": "written", "applied": None}
        self._systemctl(["restart", SERVICE], f"apply the MIG layout ({SERVICE})")
        done = self.runner.run([step["program"], "assert", "-f", self.host.sysroot.path(CONFIG_PATH.lstrip("/")),
                                "-c", CONFIG_NAME], check=False)
        if done is None or done.rc != 0:
            raise ModuleError(f"{SERVICE} ran, but nvidia-mig-parted assert says the layout is not in place: "
                              f"{((done.err or done.out) if done else 'no answer').strip()[-500:]}. See journalctl -u {SERVICE}.")
        return {"state": "applied", "applied": True}

    def _systemctl(self, args: list[str], what: str) -> None:
        done = self.runner.run(["systemctl"] + args, check=False)
        if done is None or done.rc != 0:
            raise ModuleError(f"Could not {what}: {((done.err or done.out) if done else 'systemctl is missing').strip()[-500:]}.")
