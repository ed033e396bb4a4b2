# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The cuda_toolkit module's logic: check the driver first, then install a toolkit and make it the default.

PRIVATE to the collection: no compatibility promise outside it.

``Toolkit.plan()`` checks every option, reads the host (the distribution, the driver,
the toolkit's packages, the source's candidates and the disk space when the package
lists allow, the default link) and returns the run as steps: source files, refresh,
install, the default link or alternative, the profile script. ``apply(plan)`` does
exactly those; check mode is the plan.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _cuda, _distro, _nvidia, _nvidia_driver, _nvidia_repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, PackageManager, backend_for

PROFILE = "/etc/profile.d/mlhost-cuda.sh"
DEFAULT_LINK = "/usr/local/cuda"
NOTHING = _nvidia_repo.NOTHING

# The CUDA toolkit each distribution ships (nvidia-cuda-toolkit), major.minor.
DISTRO_TOOLKITS = {("debian", "12"): "11.8", ("debian", "13"): "12.4", ("ubuntu", "22.04"): "11.5", ("ubuntu", "24.04"): "12.0"}
DISTRO_PATH = "/usr/lib/nvidia-cuda-toolkit"

CUDA_VERSION = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?")
DRIVER_VERSION = re.compile(r"[0-9]{3}(?:\.[0-9]{1,4}){0,2}")


def distro_key(distro: dict[str, t.Any]) -> tuple[str | None, str | None]:
    return distro.get("id"), distro.get("major") if distro.get("id") == "debian" else distro.get("version")


def major_minor(version: str, option: str = "version") -> str:
    """'12.4' or '12.4.1' -> '12.4', after checking NVIDIA's table (unknown versions raise ModuleError)."""
    if not CUDA_VERSION.fullmatch(version or ""):
        raise ModuleError(
            f"{option} {version!r} is not a CUDA version: give major.minor or major.minor.update in digits 0-9, for example 12.4. {NOTHING}"
        )
    if _compat.cuda_newer_than_data(version):
        return ".".join(version.split(".")[:2])
    try:
        key = _compat._cuda_key(version)
    except ValueError as exc:
        raise ModuleError(f"{option}: {exc} Give a released CUDA version, for example 12.4. {NOTHING}") from exc
    return ".".join(key.split(".")[:2])


def check_options(params: dict[str, t.Any]) -> None:
    """Every option, as given: shapes and combinations, no NUL bytes. Reads nothing, runs nothing."""
    _nvidia_repo.check_plain_text(params, ("version", "driver_version"))
    version = params.get("version") or ""
    if params["state"] == "present" and not version:
        raise ModuleError(f"version is required: a CUDA release such as 12.4, or auto. {NOTHING}")
    if version == "auto" and params["state"] == "absent":
        raise ModuleError(f"version auto cannot be removed: give the release to remove, for example 12.4. {NOTHING}")
    if version and version != "auto":
        major_minor(version)
    driver = params.get("driver_version") or ""
    if driver and not DRIVER_VERSION.fullmatch(driver):
        raise ModuleError(
            f"driver_version {driver!r} is not a driver version: give it in full (550.163.01) or a branch (550), digits 0-9. {NOTHING}"
        )
    _nvidia_repo.check_repo_options(params)
    _nvidia_repo.check_package_options(params)


def host_driver(root: t.Any, pm: PackageManager) -> tuple[str | None, str]:
    """(driver version, where from): the installed package's, else the loaded module's."""
    installed = _nvidia_driver.driver_version_of(_nvidia_driver.installed_set(pm))
    if installed:
        return installed, "installed"
    loaded, dummy = _nvidia.loaded_driver(root)
    return (loaded, "loaded") if loaded else (None, "none")


def planned_driver(value: str) -> str:
    """A branch ('550') stands for its newest release; a full version is itself."""
    return _compat.branch_latest(value) if "." not in value else value


def check_compatible(version: str, driver: str | None, origin: str, minor_compat: bool) -> dict[str, t.Any]:
    """{min_driver, compatible}; raises ModuleError naming the fix when the driver is too old.

    A release newer than the data has no known minimum: only the floor of its major (minor-version compatibility) is
    checked, and compatible stays None (the caller warns)."""
    shown = (driver if not driver.endswith(".999.99") else f"branch {driver.split('.')[0]}") if driver else ""
    if origin == "planned":
        origin = "planned (driver_version)"
    if _compat.cuda_newer_than_data(version):
        floor = _compat.MINOR_VERSION_COMPAT.get(version.split(".")[0])
        if driver and floor and _compat.version_tuple(driver) < _compat.version_tuple(floor):
            raise ModuleError(
                f"CUDA {version} needs NVIDIA driver >= {floor} at the very least (every CUDA {version.split('.')[0]}.x "
                f"does); this host has {shown} {origin}. Install driver branch {floor.split('.')[0]} or newer "
                "(nvidia_driver branch / mlhost_nvidia_driver_branch). Nothing was changed.",
                min_driver=None,
            )
        return {"min_driver": None, "compatible": None}
    minimum = _compat.cuda_min_driver(version)
    if not driver:
        return {"min_driver": minimum, "compatible": None}
    if _compat.cuda_driver_compatible(driver, version, minor_compat):
        return {"min_driver": minimum, "compatible": True}
    best = _compat.max_cuda_for_driver(driver)
    floor = _compat.MINOR_VERSION_COMPAT.get(version.split(".")[0])
    raise ModuleError(
        f"CUDA {version} needs NVIDIA driver >= {minimum}; this host has {shown} {origin}. "
        f"Install driver branch {minimum.split('.')[0]} or newer (nvidia_driver branch / mlhost_nvidia_driver_branch)"
        + (f", or choose CUDA <= {best}" if best else "")
        + (f" (or allow_minor_version_compat with a driver >= {floor})" if floor and not minor_compat else "")
        + ". Nothing was changed.",
        min_driver=minimum,
    )


def offered_toolkits(pm: PackageManager) -> list[str]:
    """The CUDA releases (major.minor, oldest first) the configured sources offer as cuda-toolkit-X-Y; [] without
    package lists."""
    versions = set()
    for name in pm.offered("cuda-toolkit-"):
        match = re.fullmatch(r"cuda-toolkit-([0-9]{1,2})-([0-9]{1,2})", name)
        if match:
            versions.add(f"{int(match.group(1))}.{int(match.group(2))}")
    return sorted(versions, key=_compat.version_tuple)


def profile_script(cuda_home: str, with_paths: bool) -> bytes:
    lines = [_nvidia_repo.MANAGED.rstrip("\n"), "# The default CUDA toolkit for login shells.", f"export CUDA_HOME={cuda_home}"]
    if with_paths:
        lines += [
            f'case ":${{PATH}}:" in *":{cuda_home}/bin:"*) ;; *) PATH="{cuda_home}/bin:${{PATH}}" ;; esac',
            "export PATH",
            f'case ":${{LD_LIBRARY_PATH:-}}:" in *":{cuda_home}/lib64:"*) ;; '
            f'*) LD_LIBRARY_PATH="{cuda_home}/lib64${{LD_LIBRARY_PATH:+:${{LD_LIBRARY_PATH}}}}" ;; esac',
            "export LD_LIBRARY_PATH",
        ]
    return ("\n".join(lines) + "\n").encode()


def free_bytes(path: str) -> tuple[int, int]:
    """(free bytes, device) of the filesystem holding ``path`` (its nearest existing parent)."""
    while not os.path.exists(path):
        path = os.path.dirname(path) or "/"
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize, os.stat(path).st_dev


def space_shortfall(download: int | None, installed: int | None, archives: str = "/var/cache/apt/archives",
                    target: str = "/usr") -> str | None:
    """A message when the filesystems lack room for the download and the installed files; None when there is room."""
    needs: dict[int, list[t.Any]] = {}
    for path, size in ((archives, download or 0), (target, installed or 0)):
        free, device = free_bytes(path)
        entry = needs.setdefault(device, [0, free, []])
        entry[0] += size
        entry[2].append(path)
    for need, free, paths in needs.values():
        if need > free:
            return (
                f"Not enough disk space: the toolkit needs {need / 1e9:.1f} GB on the filesystem of {' and '.join(paths)}, "
                f"which has {free / 1e9:.1f} GB free. Free {(need - free) / 1e9:.1f} GB or more, then rerun. Nothing was installed."
            )
    return None


class Toolkit(Worker):
    """plan(): the whole run as steps; apply(plan): those steps, in order."""

    def __init__(self, host: t.Any) -> None:
        super().__init__(host)
        self.root = host.sysroot
        self.files = _nvidia_repo.FileSet(self.root.root)
        self.warnings: list[str] = []

    def _fetch(self, url: str) -> bytes:
        return self.host.fetch(url).read()

    # Planning ----------------------------------------------------------------------
    def plan(self) -> Plan:
        params = self.params
        check_options(params)
        distro = _distro.distro_facts(self.root)
        pm = backend_for(params["pkg_mgr"], distro, self.root, self.runner, params["lock_timeout"], False, "cuda_toolkit")
        self.pm = pm
        distro_toolkit = DISTRO_TOOLKITS.get(distro_key(distro))
        asked = params.get("version") or ""
        if asked not in ("", "auto") and params.get("driver_version") and params["state"] == "present":
            # A planned driver too old for the release is the first thing to say, whatever the source would be.
            check_compatible(asked, planned_driver(params["driver_version"]), "planned", params["allow_minor_version_compat"])
        if asked != "auto":
            # Known from the options alone: refuse a keyless NVIDIA repository before any command.
            self._pick_source(distro, major_minor(asked), distro_toolkit)
        if params.get("driver_version"):
            driver, origin = planned_driver(params["driver_version"]), "planned"
        else:
            try:
                driver, origin = host_driver(self.root, pm)
            except PackageError as exc:
                raise _nvidia_driver.package_failure(exc) from exc
        version, source, reason = self._resolve(distro, asked, driver, distro_toolkit)
        result: dict[str, t.Any] = {"version": version, "source": source, "source_reason": reason,
                                    "driver_version": driver if origin != "planned" else params["driver_version"],
                                    "driver_origin": origin, "pkg_mgr": pm.name}
        newer = _compat.cuda_newer_than_data(version)
        if newer:
            self.warnings.append(
                f"CUDA {version} is newer than this collection's compatibility data (checked {_compat.CUDA_RELEASES_CHECKED}, "
                f"newest {_compat.newest_cuda()}): the package source decides whether it exists, and its minimum driver is "
                "not known here (only its major's floor was checked). Check NVIDIA's release notes for the driver it needs."
            )
        if params["state"] == "present":
            result.update(check_compatible(version, driver, origin, params["allow_minor_version_compat"]))
            if driver is None and not newer:
                self.warnings.append(
                    f"No NVIDIA driver is installed and no driver_version was given: CUDA {version} needs >= {result['min_driver']} to run "
                    "(compiling works without one)."
                )
        else:
            result.update(min_driver=None if newer else _compat.cuda_min_driver(version), compatible=None)
        packages = ["nvidia-cuda-toolkit"] if source == "distro" else [f"cuda-toolkit-{version.replace('.', '-')}"]
        path = DISTRO_PATH if source == "distro" else f"/usr/local/cuda-{version}"
        nvcc = "/usr/bin/nvcc" if source == "distro" else f"{path}/bin/nvcc"
        result.update(packages=packages, path=path, nvcc=nvcc)
        self.target = (source, version, packages)
        self.source_reason = reason
        self.key_fingerprints: list[str] = []
        try:
            if params["state"] == "present":
                steps, state = self._plan_present(pm, distro, source, version, packages, path)
            else:
                steps, state = self._plan_absent(pm, packages, path)
        except PackageError as exc:
            raise _nvidia_driver.package_failure(exc) from exc
        result.update(actions=[step["action"] for step in steps], full_version=self._full_version(state),
                      repo_key_fingerprints=self.key_fingerprints,
                      default=params["set_default"] and params["state"] == "present")
        diff = [c.diff() for step in steps for c in step.get("changes", [])]
        return Plan(changed=bool(steps), result=result, diff=diff or None, steps=steps, warnings=self.warnings)

    def _pick_source(self, distro: dict[str, t.Any], version: str, distro_toolkit: str | None) -> tuple[str, str]:
        """(source, why) for a release; refuses what the distribution cannot give and a keyless NVIDIA repository."""
        params = self.params
        name = _nvidia_driver.distro_name(distro)
        carried = f"carries CUDA {distro_toolkit}" if distro_toolkit else "carries no CUDA toolkit known here"
        source = params["source"]
        if source == "auto":
            source = "distro" if distro_toolkit == version else "nvidia_repo"
            reason = f"{name} carries CUDA {distro_toolkit}, the release asked" if source == "distro" else f"{name} {carried}, not {version}"
        else:
            reason = f"source: {source} was set"
        if source == "distro" and distro_toolkit != version:
            raise ModuleError(
                f"{distro.get('name') or distro.get('id')} {carried}, not {version}: use source: nvidia_repo for CUDA {version}"
                + (f", or version: \"{distro_toolkit}\"" if distro_toolkit else "") + f". {NOTHING}"
            )
        return source, reason

    def _resolve(self, distro: dict[str, t.Any], asked: str, driver: str | None, distro_toolkit: str | None) -> tuple[str, str, str]:
        """(version, source, why) of the toolkit: the release asked, or for auto the distribution's or the newest the driver runs."""
        source = self.params["source"]
        if asked != "auto":
            version = major_minor(asked)
            return (version, *self._pick_source(distro, version, distro_toolkit))
        if source in ("auto", "distro") and distro_toolkit:
            name = _nvidia_driver.distro_name(distro)
            self._refuse_shadowing(distro_toolkit)
            reason = f"version auto takes the distribution's toolkit: {name} carries CUDA {distro_toolkit}"
            return distro_toolkit, "distro", reason
        if not driver:
            raise ModuleError(f"version auto needs a driver (installed, or driver_version) to pick the newest CUDA it runs. {NOTHING}")
        version = _compat.max_cuda_for_driver(driver) or ""
        if not version:
            raise ModuleError(f"Driver {driver} runs no CUDA release known here: install a newer driver first. {NOTHING}")
        source, reason = self._pick_source(distro, version, distro_toolkit)
        offered = offered_toolkits(self.pm) if source == "nvidia_repo" else []
        if offered:
            # The repository (or mirror) is read: the newest toolkit it offers that the driver runs.
            runs = [v for v in offered if not _compat.cuda_newer_than_data(v) and _compat.cuda_driver_compatible(driver, v)]
            if not runs:
                raise ModuleError(
                    f"version auto: the repository offers CUDA {', '.join(offered)}, and driver {driver} runs none of them "
                    f"(it runs CUDA <= {version}). Install a newer driver, or set version. {NOTHING}"
                )
            best = max(runs, key=_compat.version_tuple)
            return best, source, (f"version auto takes the newest CUDA the repository offers that driver {driver} runs "
                                  f"({best}; offered: {', '.join(offered)}); {reason}")
        return version, source, f"version auto takes the newest CUDA driver {driver} runs ({version}); {reason}"

    def _refuse_shadowing(self, distro_toolkit: str) -> None:
        """version auto must not make an older distribution toolkit the default over a newer one already installed
        (a toolkit from NVIDIA's repository or a runfile under /usr/local/cuda-X.Y)."""
        if self.params["state"] != "present":
            return
        newer = [tk for tk in _cuda.cuda_toolkits(self.root, {}, self.runner.run)
                 if tk["source"] != "distro" and _compat.version_tuple(tk["version"]) > _compat.version_tuple(distro_toolkit)]
        if not newer:
            return
        best = max(newer, key=lambda tk: _compat.version_tuple(tk["version"]))
        if self.params["set_default"]:
            raise ModuleError(
                f"version auto would take the distribution's CUDA {distro_toolkit} and make it the default (CUDA_HOME, "
                f"/usr/local/cuda) while CUDA {best['version']} is installed at {best['path']}. Set version: "
                f"\"{best['version']}\" to keep using it, or version: \"{distro_toolkit}\" to install it beside and make it the "
                f"default on purpose (or set_default: false). {NOTHING}"
            )
        self.warnings.append(f"CUDA {best['version']} is installed at {best['path']}; version auto installs the distribution's "
                             f"{distro_toolkit} beside it and leaves the default as it is.")

    def _full_version(self, state: dict[str, str | None]) -> str | None:
        source, version, packages = self.target
        distro_packages = {n: v for n, v in state.items() if v}
        for toolkit in _cuda.cuda_toolkits(self.root, distro_packages, self.runner.run):
            if toolkit["version"] == version and (toolkit["source"] == "distro") == (source == "distro"):
                return toolkit["full_version"]
        return None

    def _plan_present(self, pm: PackageManager, distro: dict[str, t.Any], source: str, version: str, packages: list[str],
                      path: str) -> tuple[list[dict[str, t.Any]], dict[str, str | None]]:
        params = self.params
        steps: list[dict[str, t.Any]] = []
        files, self.key_fingerprints = _nvidia_repo.source_files(params, distro, source, pm.name, self.root, self._fetch,
                                                                 self.source_reason)
        source_changes = self.files.plan(files)
        if source_changes:
            steps.append({"do": "files", "changes": source_changes, "action": "write the package sources: "
                          + ", ".join(c.action for c in source_changes)})
        state = pm.installed(packages)
        missing = [p for p in packages if state.get(p) is None]
        if missing:
            checkable = pm.cache_age() is not None and not source_changes
            if checkable:
                self._check_source(pm, source, missing)
            refresh = bool(params["update_cache"] or source_changes)
            if refresh or not checkable:
                action = "refresh the package lists" if refresh else ""
                if not checkable:
                    action += (", then " if action else "") + "check that the source carries the toolkit and the disk has room"
                steps.append({"do": "refresh", "refresh": refresh, "force": bool(source_changes), "verify": not checkable,
                              "missing": missing, "source": source, "action": action})
            steps.append({"do": "install", "names": missing, "action": f"install {' '.join(missing)}"})
        if params["set_default"]:
            if source == "distro":
                self._plan_files({PROFILE: profile_script("/usr", False)}, steps)
            else:
                self._plan_link(path, steps)
                self._plan_files({PROFILE: profile_script(DEFAULT_LINK, True)}, steps)
        return steps, state

    def _check_source(self, pm: PackageManager, source: str, missing: list[str]) -> None:
        """Refuse a source without the toolkit, or a disk without room for it."""
        candidates = pm.candidates(missing)
        absent = [p for p in missing if not candidates.get(p)]
        if absent:
            offered = offered_toolkits(pm) if source == "nvidia_repo" else []
            raise ModuleError(
                f"The {source} source has no {', '.join(absent)}: "
                + ("check that Debian's non-free component is reachable. " if source == "distro" else
                   "check repo_url (NVIDIA's repository or its mirror) carries that toolkit"
                   + (f"; it offers CUDA {', '.join(offered)}. " if offered else "; it offers no cuda-toolkit-X-Y package. "))
                + "Nothing was installed."
            )
        if self.params["check_space"]:
            download, installed = pm.space(missing)
            message = space_shortfall(download, installed)
            if message:
                raise ModuleError(message, download_bytes=download, installed_bytes=installed)

    def _plan_files(self, files: dict[str, bytes | None], steps: list[dict[str, t.Any]]) -> None:
        changes = self.files.plan(files)
        if changes:
            steps.append({"do": "files", "changes": changes, "action": ", ".join(c.action for c in changes)})

    def _plan_link(self, path: str, steps: list[dict[str, t.Any]]) -> None:
        link = self.root.path(DEFAULT_LINK.lstrip("/"))
        if os.path.islink(link):
            target = os.readlink(link)
            if target == "/etc/alternatives/cuda":
                if os.path.realpath(link) != os.path.realpath(self.root.path(path.lstrip("/"))):
                    steps.append({"do": "alternative", "path": path, "action": f"set the cuda alternative to {path}"})
                return
            if target == path:
                return
        elif os.path.exists(link):
            raise ModuleError(f"{DEFAULT_LINK} is a directory, not a link (a runfile install?): move it away, or set set_default: false. {NOTHING}")
        steps.append({"do": "link", "link": link, "path": path, "action": f"point {DEFAULT_LINK} at {path}"})

    def _plan_absent(self, pm: PackageManager, packages: list[str], path: str) -> tuple[list[dict[str, t.Any]], dict[str, str | None]]:
        steps: list[dict[str, t.Any]] = []
        state = pm.installed(packages)
        present = [p for p in packages if state.get(p)]
        if present:
            steps.append({"do": "remove", "names": present, "action": f"remove {' '.join(present)}"})
        link = self.root.path(DEFAULT_LINK.lstrip("/"))
        if os.path.islink(link) and os.readlink(link) == path:
            steps.append({"do": "unlink", "link": link, "action": f"remove {DEFAULT_LINK}"})
            self._plan_files({PROFILE: None}, steps)
        elif path == DISTRO_PATH and present:
            self._plan_files({PROFILE: None}, steps)
        return steps, state

    # Applying ----------------------------------------------------------------------
    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        packages_changed = False
        try:
            for step in plan.steps:
                packages_changed |= self._do(step)
        except PackageError as exc:
            raise _nvidia_driver.package_failure(exc) from exc
        if not packages_changed:
            return None
        return {"full_version": self._full_version(self.pm.installed(self.target[2]))}

    def _do(self, step: dict[str, t.Any]) -> bool:
        """Carry out one step; True when it installed or removed packages."""
        do = step["do"]
        pm = self.pm
        if do == "files":
            self.files.apply(step["changes"])
        elif do == "refresh":
            ran = pm.refresh(self.params["cache_valid_time"], force=step["force"]) if step["refresh"] else False
            if step["verify"] or ran:
                self._check_source(pm, step["source"], step["missing"])
        elif do == "install":
            pm.install(step["names"])
            return True
        elif do == "remove":
            pm.remove(step["names"])
            return True
        elif do == "alternative":
            self.runner.run(["update-alternatives", "--set", "cuda", step["path"]])
        elif do == "link":
            link = step["link"]
            if os.path.islink(link) and os.readlink(link) == "/etc/alternatives/cuda":
                # The install just made /usr/local/cuda an alternative (NVIDIA's packages do): choose it there instead.
                if os.path.realpath(link) != os.path.realpath(self.root.path(step["path"].lstrip("/"))):
                    self.runner.run(["update-alternatives", "--set", "cuda", step["path"]])
                return False
            tmp = link + ".mlhost-new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(step["path"], tmp)
            os.replace(tmp, link)
        elif do == "unlink":
            os.unlink(step["link"])
        return False
