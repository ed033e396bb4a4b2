# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The build_tools module's logic: resolve, plan, refresh, check availability, install.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import platform
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _build_profiles, _distro
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, PackageManager, backend
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

# Debian and RPM package names (apt also takes name=version, name:arch).
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._~:=-]*$")


class BuildToolsError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def validate(params: dict[str, t.Any]) -> None:
    """Refuse bad input before anything on the host is read or changed."""
    bad = [name for name in params["extra_packages"] if not _PACKAGE_NAME.match(name or "")]
    if bad:
        raise BuildToolsError(
            f"extra_packages has invalid package names: {', '.join(repr(b) for b in bad)}. "
            "Give plain package names (letters, digits, + . _ - ~ : =), one per list item."
        )
    for key in ("cache_valid_time", "lock_timeout"):
        if params[key] < 0:
            raise BuildToolsError(f"{key} must be 0 or more seconds, got {params[key]}.")


def resolve_host(params: dict[str, t.Any], root: Sysroot) -> tuple[str, list[str], dict[str, t.Any]]:
    """(pkg_mgr, package names, distro facts) for this host."""
    distro = _distro.distro_facts(root)
    detected = _distro.pkg_mgr_for(distro, root)
    pkg_mgr = params["pkg_mgr"] if params["pkg_mgr"] != "auto" else detected
    if pkg_mgr not in ("apt", "dnf"):
        raise BuildToolsError(
            f"No supported package manager on {distro.get('name') or 'this host'} (found {detected or 'none'}). "
            "build_tools supports apt and dnf; set pkg_mgr if detection is wrong."
        )
    profiles = params["profiles"]
    try:
        names = _build_profiles.resolve(profiles, distro, platform.release()) if profiles else []
    except ValueError as exc:
        raise BuildToolsError(str(exc)) from exc
    for name in params["extra_packages"]:
        if name not in names:
            names.append(name)
    if not names:
        raise BuildToolsError("Nothing to manage: give profiles or extra_packages.")
    return pkg_mgr, names, distro


def _diff(before: dict[str, str | None], after: dict[str, str | None], prepared: str | None) -> dict[str, str]:
    def show(state: dict[str, str | None]) -> str:
        return "".join(f"{name}: {version or 'absent'}\n" for name, version in state.items())

    diff = {"before": show(before), "after": show(after)}
    if prepared:
        diff["prepared"] = prepared
    return diff


def _unavailable_message(names: list[str], pm: PackageManager, kernel_packages: list[str]) -> str:
    headers = [n for n in names if n in kernel_packages]
    others = [n for n in names if n not in kernel_packages]
    parts = []
    if others:
        parts.append(
            f"Package(s) not found in the configured {pm.name} sources: {', '.join(others)}. "
            "Check the names, or enable the repository that carries them"
        )
    if headers:
        parts.append(
            f"The headers for the running kernel ({platform.release()}) are no longer carried by this distribution "
            f"({', '.join(headers)} not found): upgrade the kernel package, reboot into it, then rerun"
        )
    return ". ".join(parts) + ". Nothing was installed."


def run(params: dict[str, t.Any], runner: Runner, check_mode: bool, root: Sysroot | None = None) -> dict[str, t.Any]:
    validate(params)
    pkg_mgr, names, distro = resolve_host(params, root or Sysroot("/"))
    pm = backend(pkg_mgr, runner, params["lock_timeout"], params["install_recommends"])
    kernel_packages = [n for n in names if platform.release() in n]
    result: dict[str, t.Any] = {
        "changed": False,
        "pkg_mgr": pkg_mgr,
        "packages": names,
        "installed": [],
        "removed": [],
        "plan": [],
        "cache_updated": False,
    }
    try:
        before = pm.installed(names)
        if params["state"] == "present":
            missing = [n for n in names if before[n] is None]
            if missing and not check_mode:
                if params["update_cache"]:
                    result["cache_updated"] = pm.refresh(params["cache_valid_time"])
                found = pm.available(missing)
                if len(found) < len(missing) and params["update_cache"] and not result["cache_updated"]:
                    # The lists may predate the package: refresh once before calling it missing.
                    result["cache_updated"] = pm.refresh(params["cache_valid_time"], force=True)
                    found = pm.available(missing)
                unavailable = [n for n in missing if n not in found]
                if unavailable:
                    raise BuildToolsError(_unavailable_message(unavailable, pm, kernel_packages), unavailable=unavailable)
            plan = pm.plan(missing) if missing else []
            result["plan"] = plan if plan is not None else missing
            if missing and not check_mode:
                pm.install(missing)
            after = pm.installed(names) if missing and not check_mode else dict(before)
            if check_mode:
                after.update({n: "(would be installed)" for n in missing})
            elif missing:
                still = [n for n in missing if after[n] is None]
                if still:
                    raise BuildToolsError(
                        f"{pm.name} reported success but {', '.join(still)} is not installed (a virtual or renamed package?). "
                        "Name the real package in extra_packages."
                    )
            result["installed"] = missing
            result["changed"] = bool(missing)
        else:
            present = [n for n in names if before[n] is not None]
            if present and not check_mode:
                pm.remove(present)
            after = dict(before)
            after.update({n: None for n in present})
            result["removed"] = present
            result["changed"] = bool(present)
        result["versions"] = after
        prepared = f"{pkg_mgr} would install: {' '.join(result['plan'])}" if result["plan"] and result["changed"] else None
        result["diff"] = _diff(before, after, prepared)
    except PackageError as exc:
        raise BuildToolsError(exc.msg, rc=getattr(exc.result, "rc", None), stdout=getattr(exc.result, "out", None),
                              stderr=getattr(exc.result, "err", None), cmd=exc.cmd) from exc
    result["commands"] = [" ".join(c) for c in runner.calls]
    result["distro"] = {k: distro.get(k) for k in ("id", "version")}
    return result
