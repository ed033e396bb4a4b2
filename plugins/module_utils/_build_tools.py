# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The build_tools module's worker: plan (check, resolve, read), then apply (refresh, install or remove, verify).

PRIVATE to the collection: no compatibility promise outside it.

``BuildTools.plan()`` checks every option, resolves the profiles to this host's package names,
reads their installed state in one query and, where the package lists can be read without a
refresh (apt with lists present), which of the missing ones the sources carry and what an
install would bring. It changes nothing. ``apply(plan)`` refreshes the metadata when needed,
checks availability again after a refresh, installs or removes, and verifies the result.
Check mode reports the plan: the same ``changed``, ``installed``/``removed`` and ``plan``
lists as the real run.
"""

from __future__ import annotations

import platform
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _build_profiles, _distro
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageManager, backend_for
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

# Debian and RPM package names (apt also takes name=version, name:arch); ASCII only.
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._~:=-]*")
MAX_NAME = 200
MAX_PACKAGES = 500
# Upper bounds: a week of lock waiting, ten years of cache validity; beyond that it is a typo.
LIMITS = {"cache_valid_time": 10 * 365 * 86400, "lock_timeout": 7 * 86400}
NOTHING = "Nothing was changed."


def _shown(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_options(params: dict[str, t.Any]) -> None:
    """Refuse bad input before anything on the host is read or changed."""
    extra = params.get("extra_packages") or []
    if len(extra) > MAX_PACKAGES:
        raise ModuleError(f"extra_packages has {len(extra)} items; at most {MAX_PACKAGES} are taken. Split the list. {NOTHING}")
    bad = [name for name in extra if not _valid_name(name)]
    if bad:
        raise ModuleError(
            f"extra_packages has invalid package names: {', '.join(_shown(b) for b in bad)}. "
            f"Give plain package names (ASCII letters, digits, + . _ - ~ : =, at most {MAX_NAME} characters), "
            f"one per list item. {NOTHING}",
            invalid=[str(b) for b in bad],
        )
    for key, limit in LIMITS.items():
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ModuleError(f"{key} must be a whole number of seconds from 0 to {limit}, got {_shown(value)}. {NOTHING}")


def _valid_name(name: t.Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME and bool(_PACKAGE_NAME.fullmatch(name))


def resolve_host(params: dict[str, t.Any], root: Sysroot, runner: t.Any) -> tuple[PackageManager, list[str], dict[str, t.Any]]:
    """(package manager backend, package names, distro facts) for this host."""
    distro = _distro.distro_facts(root)
    pm = backend_for(params["pkg_mgr"], distro, root, runner, params.get("lock_timeout", 300),
                     params.get("install_recommends", False), "build_tools")
    profiles = params["profiles"]
    try:
        names = _build_profiles.resolve(profiles, distro, platform.release()) if profiles else []
    except ValueError as exc:
        raise ModuleError(f"profiles: {exc} {NOTHING}") from exc
    for name in params["extra_packages"]:
        if name not in names:
            names.append(name)
    if not names:
        raise ModuleError(f"Nothing to manage: give profiles or extra_packages. {NOTHING}")
    return pm, names, distro


def _show(state: dict[str, str | None]) -> str:
    return "".join(f"{name}: {version or 'absent'}\n" for name, version in state.items())


def _diff(before: dict[str, str | None], after: dict[str, str | None], prepared: str | None) -> dict[str, str]:
    diff = {"before": _show(before), "after": _show(after)}
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


class BuildTools(Worker):
    """Compilers and headers under each distribution's names: one query to read, one transaction to change."""

    pm: PackageManager
    names: list[str]

    def plan(self) -> Plan:
        params = self.params
        check_options(params)
        self.pm, names, distro = resolve_host(params, self.host.sysroot, self.runner)
        pkg_mgr = self.pm.name
        self.names = names
        self.kernel_packages = [n for n in names if platform.release() in n]
        before = self.pm.installed(names)  # a failing package command is a PackageError, a ModuleError
        if params["state"] == "present":
            return self._plan_present(pkg_mgr, names, distro, before)
        return self._plan_absent(pkg_mgr, names, distro, before)

    def _result(self, pkg_mgr: str, names: list[str], distro: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"pkg_mgr": pkg_mgr, "packages": names, "installed": [], "removed": [], "plan": [], "cache_updated": False,
                "distro": {k: distro.get(k) for k in ("id", "version")}}

    def _plan_present(self, pkg_mgr: str, names: list[str], distro: dict[str, t.Any], before: dict[str, str | None]) -> Plan:
        result = self._result(pkg_mgr, names, distro)
        missing = [n for n in names if before[n] is None]
        after = dict(before)
        known = False  # whether the current lists say that every missing package exists
        unavailable: list[str] = []
        if missing and self.pm.cache_age() is not None:
            # apt's lists are on the host: availability and candidates read without a refresh.
            candidates = self.pm.candidates(missing)
            unavailable = [n for n in missing if candidates.get(n) is None]
            if unavailable and not self.params["update_cache"]:
                raise ModuleError(_unavailable_message(unavailable, self.pm, self.kernel_packages), unavailable=unavailable)
            after.update({n: candidates.get(n) for n in missing})
            known = not unavailable
        # Simulate only what the sources carry: a name they lack would fail the simulation anyway.
        prepared = self.pm.plan(missing) if missing and not unavailable else None
        result["plan"] = prepared if prepared is not None else list(missing)
        result["installed"] = missing
        result["versions"] = after
        diff_after = {n: (after[n] or "present") if n in missing else after[n] for n in names}
        diff = _diff(before, diff_after, f"{pkg_mgr} install: {' '.join(result['plan'])}" if missing else None)
        steps = [("install", missing, known)] if missing else []
        return Plan(changed=bool(missing), result=result, diff=diff, steps=steps)

    def _plan_absent(self, pkg_mgr: str, names: list[str], distro: dict[str, t.Any], before: dict[str, str | None]) -> Plan:
        result = self._result(pkg_mgr, names, distro)
        present = [n for n in names if before[n] is not None]
        after = dict(before)
        after.update({n: None for n in present})
        result["removed"] = present
        result["versions"] = after
        steps = [("remove", present)] if present else []
        return Plan(changed=bool(present), result=result, diff=_diff(before, after, None), steps=steps)

    # --- apply ------------------------------------------------------------------
    def apply(self, plan: Plan) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        for step in plan.steps:
            if step[0] == "install":
                out.update(self._install(step[1], known_available=step[2]))
            elif step[0] == "remove":
                out.update(self._remove(step[1]))
        if "versions" in out and isinstance(plan.diff, dict):
            plan.diff["after"] = _show(out["versions"])  # the diff shows the versions the run left
        return out

    def _install(self, missing: list[str], known_available: bool) -> dict[str, t.Any]:
        params, pm = self.params, self.pm
        updated = pm.refresh(params["cache_valid_time"]) if params["update_cache"] else False
        if updated or not known_available:
            found = pm.available(missing)
            if len(found) < len(missing) and params["update_cache"] and not updated:
                # The lists may predate the package: refresh once before calling it missing.
                updated = pm.refresh(params["cache_valid_time"], force=True)
                found = pm.available(missing)
            unavailable = [n for n in missing if n not in found]
            if unavailable:
                raise ModuleError(_unavailable_message(unavailable, pm, self.kernel_packages), unavailable=unavailable,
                                  cache_updated=updated)
        pm.install(missing)
        after = pm.installed(self.names)
        still = [n for n in missing if after[n] is None]
        if still:
            raise ModuleError(
                f"{pm.name} reported success but {', '.join(still)} is not installed (a virtual or renamed package?). "
                "Name the real package in extra_packages.",
                versions=after,
            )
        return {"cache_updated": updated, "versions": after}

    def _remove(self, present: list[str]) -> dict[str, t.Any]:
        self.pm.remove(present)
        after = self.pm.installed(self.names)
        still = [n for n in present if after[n] is not None]
        if still:
            raise ModuleError(
                f"{self.pm.name} reported success but {', '.join(still)} is still installed (another package depends on it?). "
                "Remove what depends on it first, then rerun.",
                versions=after,
            )
        return {"versions": after}
