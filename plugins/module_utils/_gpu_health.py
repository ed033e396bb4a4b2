# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""GPU health: read ``nvidia-smi -q`` and the kernel log, and judge each GPU by named checks.

PRIVATE to the collection: no compatibility promise outside it.

A node that "installed fine" can still have uncorrectable ECC errors, retired or remapped memory, Xid errors, a
PCIe link trained below its width, fewer GPUs than it should, or an NVSwitch fabric that never came up. Each of
those is a named check here with its detail per GPU. A query that fails, or a field the check needs that the
driver does not print, is never taken as healthy: the check says what it could not read.

``nvidia-smi -q`` prints an indented tree of ``Label : value`` lines and section headers, one ``GPU <bus id>``
section per GPU; drivers differ in which fields they print (older ones: ECC ``Single Bit``/``Double Bit``; newer:
``SRAM``/``DRAM``), so the reader keeps the tree and each check looks for the fields it knows.
"""

from __future__ import annotations

import re
import typing as t

NOT_AVAILABLE = ("n/a", "not available", "[n/a]", "[not supported]", "not supported", "unknown error", "")

# Xid codes that mean the GPU or its memory or links are at fault, not the application (NVIDIA's "Xid Errors"
# catalog, checked 2026-12-02): 48 double-bit ECC, 61/62 internal micro-controller errors, 63/64 page retirement
# or row remapping events (64: failed), 74 NVLink error, 79 fallen off the bus, 92 high single-bit ECC rate,
# 94/95 contained/uncontained ECC error, 119/120 GSP errors, 140 unrecovered ECC error. Others (13, 31, 43, 45:
# an application's fault or its end) are reported, not failed.
CRITICAL_XIDS = frozenset({48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140})

_XID = re.compile(r"NVRM: Xid \(PCI:([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-9A-Fa-f])?)\): ([0-9]{1,4})\b,?\s*(.*)")
_FIELD = re.compile(r"^ *(\S.*?)\s+:(?:\s(.*))?$")
_GPU_HEADER = re.compile(r"GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])")

Tree = t.Dict[str, t.Any]


def parse_tree(text: str) -> Tree:
    """The indented ``Label : value`` / ``Section`` lines as nested dicts (a section is a dict, a field a string).

    A field's label ends at the first colon preceded by a space ('Bus Id : 00000000:18:00.0'); a line without one
    is a section ('GPU 00000000:18:00.0', 'ECC Errors'). Repeated labels at one level keep the first value."""
    root: Tree = {}
    stack: list[tuple[int, Tree]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.rstrip("\r").expandtabs(4).rstrip()
        if not line.strip() or line.lstrip().startswith("="):
            continue
        indent = len(line) - len(line.lstrip(" "))
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        field = _FIELD.match(line)
        if field:
            parent.setdefault(field.group(1).strip(), (field.group(2) or "").strip())
            continue
        label = line.strip()
        section = parent.setdefault(label, {})
        if isinstance(section, dict):
            stack.append((indent, section))
    return root


def _get(tree: t.Any, *path: str) -> t.Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        lowered = {k.lower(): v for k, v in tree.items()}
        tree = lowered.get(key.lower())
    return tree


def _count(value: t.Any) -> int | None:
    """'0' -> 0; 'N/A' or anything else -> None."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
        return int(value.strip())
    return None


def _width(value: t.Any) -> int | None:
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]{1,2})x", value.strip())
        if match:
            return int(match.group(1))
    return None


def known(value: t.Any) -> bool:
    return isinstance(value, str) and value.strip().lower() not in NOT_AVAILABLE


def parse_smi_q(text: str) -> dict[str, t.Any]:
    """{driver_version, cuda_version, attached_gpus, gpus: [per-GPU fields]} from ``nvidia-smi -q``."""
    tree = parse_tree(text)
    gpus = []
    for label, section in tree.items():
        match = _GPU_HEADER.fullmatch(label)
        if not match or not isinstance(section, dict):
            continue
        volatile = _get(section, "ECC Errors", "Volatile") or {}
        aggregate = _get(section, "ECC Errors", "Aggregate") or {}
        gpus.append({
            "bus_id": match.group(1).lower(),
            "name": _get(section, "Product Name"),
            "persistence_mode": _get(section, "Persistence Mode"),
            "ecc_mode": _get(section, "ECC Mode", "Current"),
            "ecc_volatile_uncorrectable": _uncorrectable(volatile),
            "ecc_aggregate_uncorrectable": _uncorrectable(aggregate),
            "retired_single_bit": _count(_retired(section, "Single Bit ECC")),
            "retired_double_bit": _count(_retired(section, "Double Bit ECC")),
            "retirement_pending": _get(section, "Retired Pages", "Pending Page Blacklist")
            or _get(section, "Retired Pages", "Pending Page Retirement"),
            "remapped_correctable": _count(_get(section, "Remapped Rows", "Correctable Error")),
            "remapped_uncorrectable": _count(_get(section, "Remapped Rows", "Uncorrectable Error")),
            "remapping_pending": _get(section, "Remapped Rows", "Pending"),
            "remapping_failed": _get(section, "Remapped Rows", "Remapping Failure Occurred"),
            "pcie_gen_max": _get(section, "PCI", "GPU Link Info", "PCIe Generation", "Max"),
            "pcie_gen_current": _get(section, "PCI", "GPU Link Info", "PCIe Generation", "Current"),
            "link_width_max": _width(_get(section, "PCI", "GPU Link Info", "Link Width", "Max")),
            "link_width_current": _width(_get(section, "PCI", "GPU Link Info", "Link Width", "Current")),
            "fabric_state": _get(section, "Fabric", "State"),
            "fabric_status": _get(section, "Fabric", "Status"),
        })
    return {
        "driver_version": _get(tree, "Driver Version"),
        "cuda_version": _get(tree, "CUDA Version"),
        "attached_gpus": _count(_get(tree, "Attached GPUs")),
        "gpus": gpus,
    }


def _uncorrectable(errors: Tree) -> int | None:
    """The sum of the uncorrectable counters of an ECC Errors block (newer drivers: SRAM Uncorrectable (Parity,
    SEC-DED) and DRAM Uncorrectable; older: Double Bit > Total); None when none is printed as a number."""
    found = []
    for label, value in (errors or {}).items():
        lowered = label.lower()
        if "uncorrectable" in lowered and isinstance(value, str):
            found.append(_count(value))
        elif lowered == "double bit" and isinstance(value, dict):
            found.append(_count(_get(value, "Total")))
    numbers = [n for n in found if n is not None]
    return sum(numbers) if numbers else None


def _retired(section: Tree, label: str) -> t.Any:
    value = _get(section, "Retired Pages", label)
    if isinstance(value, dict):  # older drivers: "Single Bit ECC" > "Retired Count"... keep the count line
        return _get(value, "Retired Count") or _get(value, "Count")
    return value


def parse_xids(text: str) -> list[dict[str, t.Any]]:
    """Every ``NVRM: Xid (PCI:<bus>): <code>, ...`` line of a kernel log, in order."""
    found = []
    for line in text.splitlines():
        match = _XID.search(line)
        if match:
            bus = match.group(1).lower()
            if bus.count(":") == 1:
                bus = "0000:" + bus
            found.append({"pci": bus, "xid": int(match.group(2)), "detail": match.group(3).strip()[:200]})
    return found


def check(name: str, ok: bool, detail: str, **extra: t.Any) -> dict[str, t.Any]:
    entry = {"name": name, "ok": ok, "detail": detail}
    entry.update(extra)
    return entry


def _short(bus: str) -> str:
    """'00000000:18:00.0' -> '0000:18:00.0' (the kernel's form, used in the details)."""
    return bus[-12:] if len(bus) > 12 else bus


def assess(smi: dict[str, t.Any], xids: list[dict[str, t.Any]] | None, xid_error: str | None, pci_gpus: int,
           expected_gpus: int, fabric_needed: bool) -> list[dict[str, t.Any]]:
    """The named health checks of one host, each {name, ok, detail, gpus?}.

    ``xids`` None with ``xid_error``: the kernel log could not be read (a failed check). ``fabric_needed``: the
    node has NVSwitches, so each GPU's fabric must be Completed/Success."""
    gpus = smi["gpus"]
    checks = []
    seen = len(gpus)
    counts = f"nvidia-smi lists {seen} GPU(s), the PCI bus {pci_gpus}"
    if expected_gpus:
        checks.append(check("gpu_count", seen == expected_gpus and pci_gpus >= expected_gpus,
                            f"{counts}; {expected_gpus} expected (expected_gpus)."))
    else:
        checks.append(check("gpu_count", seen == pci_gpus and seen > 0, f"{counts}" + ("." if seen == pci_gpus else
                            ": a GPU on the bus that the driver does not list has failed or fallen off the bus.")))
    checks.append(_per_gpu("ecc", gpus, _ecc))
    checks.append(_per_gpu("retired_pages", gpus, _retired_pages))
    checks.append(_per_gpu("remapped_rows", gpus, _remapped_rows))
    checks.append(_per_gpu("pcie_link", gpus, _pcie_link))
    checks.append(_per_gpu("persistence_mode", gpus, _persistence))
    if fabric_needed or any(known(g["fabric_state"]) for g in gpus):
        checks.append(_per_gpu("fabric", gpus, _fabric))
    checks.append(_xid_check(xids, xid_error, gpus))
    return checks


def _per_gpu(name: str, gpus: list[dict[str, t.Any]], judge: t.Callable[[dict[str, t.Any]], tuple[bool, str]]) -> dict[str, t.Any]:
    rows = []
    for gpu in gpus:
        ok, why = judge(gpu)
        rows.append({"pci": _short(gpu["bus_id"]), "ok": ok, "detail": why})
    bad = [r for r in rows if not r["ok"]]
    if not rows:
        return check(name, False, "no GPU to check (nvidia-smi listed none).", gpus=rows)
    detail = "; ".join(f"{r['pci']}: {r['detail']}" for r in bad) if bad else f"{len(rows)} GPU(s): {rows[0]['detail']}" \
        if len({r["detail"] for r in rows}) == 1 else "; ".join(f"{r['pci']}: {r['detail']}" for r in rows)
    return check(name, not bad, detail, gpus=rows)


def _ecc(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    mode = gpu["ecc_mode"]
    volatile, aggregate = gpu["ecc_volatile_uncorrectable"], gpu["ecc_aggregate_uncorrectable"]
    if not known(mode) or str(mode).lower() != "enabled":
        return True, f"ECC {str(mode or 'not reported').lower()} (not checked)"
    if volatile is None and aggregate is None:
        return False, "ECC is enabled but no uncorrectable-error counter was readable"
    if volatile:
        return False, f"{volatile} uncorrectable ECC error(s) since the driver loaded"
    if aggregate:
        return False, f"{aggregate} uncorrectable ECC error(s) over the GPU's life (aggregate)"
    return True, "no uncorrectable ECC errors"


def _retired_pages(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    pending = str(gpu["retirement_pending"] or "").strip().lower()
    single, double = gpu["retired_single_bit"], gpu["retired_double_bit"]
    if single is None and double is None and not known(pending):
        return True, "page retirement not reported (GPUs with row remapping report remapped rows instead)"
    if pending == "yes":
        return False, "a page retirement is pending: reset the GPU or reboot"
    if double:
        return False, f"{double} page(s) retired for double-bit ECC errors"
    return True, f"{(single or 0) + (double or 0)} retired page(s)"


def _remapped_rows(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    failed = str(gpu["remapping_failed"] or "").strip().lower()
    pending = str(gpu["remapping_pending"] or "").strip().lower()
    unc = gpu["remapped_uncorrectable"]
    if not known(failed) and not known(pending) and unc is None:
        return True, "row remapping not reported (before Ampere)"
    if failed == "yes":
        return False, "a row remapping failed: the GPU needs service"
    if pending == "yes":
        return False, "a row remapping is pending: reset the GPU or reboot"
    return True, f"{unc or 0} row(s) remapped for uncorrectable errors, none pending"


def _pcie_link(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    most, now = gpu["link_width_max"], gpu["link_width_current"]
    if most is None or now is None:
        return False, "the PCIe link width was not readable"
    gen = f", gen {gpu['pcie_gen_current']} of {gpu['pcie_gen_max']}" if known(gpu["pcie_gen_max"]) else ""
    if now < most:
        return False, f"PCIe link trained at x{now} of x{most}{gen}: reseat the GPU or check the riser/slot"
    # The generation drops at idle to save power; only the width says the link trained short.
    return True, f"PCIe x{now} of x{most}{gen}"


def _persistence(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    mode = str(gpu["persistence_mode"] or "").strip().lower()
    if mode == "enabled":
        return True, "persistence mode enabled"
    if not known(mode):
        return False, "persistence mode not readable"
    return False, f"persistence mode {mode}: enable nvidia-persistenced (nvidia_driver's persistence option)"


def _fabric(gpu: dict[str, t.Any]) -> tuple[bool, str]:
    state, status = gpu["fabric_state"], gpu["fabric_status"]
    if not known(state):
        return False, "the NVSwitch fabric state is not reported: is nvidia-fabricmanager running at the driver's version?"
    if str(state).strip().lower() != "completed" or str(status or "").strip().lower() != "success":
        return False, f"fabric {state} / {status or 'no status'}: start nvidia-fabricmanager (at exactly the driver's version)"
    return True, "fabric Completed / Success"


def _xid_check(xids: list[dict[str, t.Any]] | None, error: str | None, gpus: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    if xids is None:
        return check("xid", False, f"the kernel log could not be read ({error or 'no reader'}), so Xid errors are unknown.")
    critical = [x for x in xids if x["xid"] in CRITICAL_XIDS]
    codes = sorted({x["xid"] for x in xids})
    if critical:
        shown = "; ".join(f"{x['pci']}: Xid {x['xid']} {x['detail']}".strip() for x in critical[:5])
        return check("xid", False, f"{len(critical)} Xid error(s) since boot that mean a GPU fault: {shown}", xids=xids[:50])
    if xids:
        return check("xid", True, f"Xid {', '.join(map(str, codes))} since boot (application faults, not the GPU's)", xids=xids[:50])
    return check("xid", True, "no Xid errors since boot", xids=[])
