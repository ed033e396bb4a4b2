# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The cuda_toolkit module's logic: check the driver first, then install a toolkit and make it the default.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _cuda, _distro, _nvidia, _nvidia_driver, _nvidia_repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, backend, parse_apt_space
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

PROFILE = "/etc/profile.d/mlhost-cuda.sh"
DEFAULT_LINK = "/usr/local/cuda"

# The CUDA toolkit each distribution ships (nvidia-cuda-toolkit), major.minor.
DISTRO_TOOLKITS = {("debian", "12"): "11.8", ("debian", "13"): "12.4", ("ubuntu", "22.04"): "11.5", ("ubuntu", "24.04"): "12.0"}
DISTRO_PATH = "/usr/lib/nvidia-cuda-toolkit"


class ToolkitError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def distro_key(distro: dict[str, t.Any]) -> tuple[str | None, str | None]:
    return distro.get("id"), distro.get("major") if distro.get("id") == "debian" else distro.get("version")


def major_minor(version: str) -> str:
    """'12.4' or '12.4.1' -> '12.4', after checking NVIDIA's table (unknown versions raise ToolkitError)."""
    try:
        key = _compat._cuda_key(version)
    except ValueError as exc:
        raise ToolkitError(f"{exc} Give a released CUDA version, for example 12.4.") from exc
    return ".".join(key.split(".")[:2])


def validate(params: dict[str, t.Any]) -> None:
    version = params.get("version") or ""
    if params["state"] == "present" and not version:
        raise ToolkitError("version is required: a CUDA release such as 12.4, or auto.")
    if version and version != "auto":
        major_minor(version)
    driver = params.get("driver_version") or ""
    if driver:
        try:
            _compat.version_tuple(driver)
        except ValueError as exc:
            raise ToolkitError(f"driver_version {driver!r} is not a driver version: give it in full (550.163.01) or a branch (550).") from exc
    _nvidia_driver.validate(
        {"branch": "", "version": "", "source": params["source"], "state": params["state"], "repo_key": params.get("repo_key"),
         "repo_key_sha256": params.get("repo_key_sha256"), "repo_url": params.get("repo_url"),
         "cache_valid_time": params["cache_valid_time"], "lock_timeout": params["lock_timeout"]}
    )


def host_driver(root: Sysroot, runner: Runner, pkg_mgr: str) -> tuple[str | None, str]:
    """(driver version, where from): the installed package's, else the loaded module's."""
    installed = _nvidia_driver.driver_version_of(_nvidia_driver.installed_set(runner, pkg_mgr))
    if installed:
        return installed, "installed"
    loaded, dummy = _nvidia.loaded_driver(root)
    return (loaded, "loaded") if loaded else (None, "none")


def planned_driver(value: str) -> str:
    """A branch ('550') stands for its newest release; a full version is itself."""
    return _compat.branch_latest(value) if "." not in value else value


def check_compatible(version: str, driver: str | None, origin: str, minor_compat: bool) -> dict[str, t.Any]:
    """{min_driver, compatible}; raises ToolkitError naming the fix when the driver is too old."""
    minimum = _compat.cuda_min_driver(version)
    if not driver:
        return {"min_driver": minimum, "compatible": None}
    shown = driver if not driver.endswith(".999.99") else f"branch {driver.split('.')[0]}"
    if _compat.cuda_driver_compatible(driver, version, minor_compat):
        return {"min_driver": minimum, "compatible": True}
    best = _compat.max_cuda_for_driver(driver)
    floor = _compat.MINOR_VERSION_COMPAT.get(version.split(".")[0])
    raise ToolkitError(
        f"CUDA {version} needs NVIDIA driver >= {minimum}; this host has {shown} {origin}. "
        f"Install driver branch {minimum.split('.')[0]} or newer (nvidia_driver branch / mlhost_nvidia_driver_branch)"
        + (f", or choose CUDA <= {best}" if best else "")
        + (f" (or allow_minor_version_compat with a driver >= {floor})" if floor and not minor_compat else "")
        + ". Nothing was changed.",
        min_driver=minimum,
    )


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


class Toolkit:
    def __init__(self, params: dict[str, t.Any], runner: Runner, check_mode: bool, root: Sysroot,
                 fetch: t.Callable[[str], bytes]) -> None:
        self.params = params
        self.runner = runner
        self.check_mode = check_mode
        self.root = root
        self.fetch = fetch
        self.files = _nvidia_repo.FileSet(root.root)
        self.actions: list[str] = []
        self.warnings: list[str] = []
        self.diffs: list[dict[str, str]] = []

    def _files(self, files: dict[str, bytes | None]) -> bool:
        return self.files.bring(files, self.check_mode, self.actions, self.diffs)

    def run(self) -> dict[str, t.Any]:
        params = self.params
        validate(params)
        distro = _distro.distro_facts(self.root)
        pkg_mgr = params["pkg_mgr"] if params["pkg_mgr"] != "auto" else _distro.pkg_mgr_for(distro, self.root)
        if pkg_mgr not in ("apt", "dnf"):
            raise ToolkitError(f"No supported package manager on {distro.get('name') or 'this host'}: cuda_toolkit supports apt and dnf.")
        distro_toolkit = DISTRO_TOOLKITS.get(distro_key(distro))
        asked = params.get("version") or ""
        source = params["source"]
        if params.get("driver_version"):
            driver, origin = planned_driver(params["driver_version"]), "planned"
        else:
            driver, origin = host_driver(self.root, self.runner, pkg_mgr)
        if asked == "auto":
            if source in ("auto", "distro") and distro_toolkit:
                version, source = distro_toolkit, "distro"
            elif driver:
                version = _compat.max_cuda_for_driver(driver) or ""
                if not version:
                    raise ToolkitError(f"Driver {driver} runs no CUDA release known here: install a newer driver first.")
            else:
                raise ToolkitError("version auto needs a driver (installed, or driver_version) to pick the newest CUDA it runs.")
        else:
            version = major_minor(asked) if asked else (distro_toolkit or "")
        if source == "auto":
            source = "distro" if distro_toolkit == version else "nvidia_repo"
        if source == "distro" and distro_toolkit != version:
            carried = f"carries CUDA {distro_toolkit}" if distro_toolkit else "carries no CUDA toolkit known here"
            raise ToolkitError(
                f"{distro.get('name') or distro.get('id')} {carried}, not {version}: use source: nvidia_repo for CUDA {version}"
                + (f", or version: \"{distro_toolkit}\"" if distro_toolkit else "") + ". Nothing was changed."
            )
        result: dict[str, t.Any] = {"version": version, "source": source, "driver_version": driver if origin != "planned" else params["driver_version"],
                                    "driver_origin": origin, "pkg_mgr": pkg_mgr}
        if params["state"] == "present":
            result.update(check_compatible(version, driver, origin, params["allow_minor_version_compat"]))
            if driver is None:
                self.warnings.append(
                    f"No NVIDIA driver is installed and no driver_version was given: CUDA {version} needs >= {result['min_driver']} to run "
                    "(compiling works without one)."
                )
        else:
            result.update(min_driver=_compat.cuda_min_driver(version), compatible=None)
        dashed = version.replace(".", "-")
        packages = ["nvidia-cuda-toolkit"] if source == "distro" else [f"cuda-toolkit-{dashed}"]
        path = DISTRO_PATH if source == "distro" else f"/usr/local/cuda-{version}"
        nvcc = "/usr/bin/nvcc" if source == "distro" else f"{path}/bin/nvcc"
        result.update(packages=packages, path=path, nvcc=nvcc)
        pm = backend(pkg_mgr, self.runner, params["lock_timeout"], False)
        try:
            if params["state"] == "present":
                self._present(pm, distro, source, version, packages, path)
            else:
                self._absent(pm, packages, path)
        except PackageError as exc:
            raise ToolkitError(exc.msg, rc=getattr(exc.result, "rc", None), stdout=getattr(exc.result, "out", None),
                               stderr=getattr(exc.result, "err", None), cmd=exc.cmd) from exc
        full = None
        for toolkit in _cuda.cuda_toolkits(self.root, self._distro_packages(pkg_mgr), self.runner.run):
            if toolkit["version"] == version and (toolkit["source"] == "distro") == (source == "distro"):
                full = toolkit["full_version"]
        result.update(changed=bool(self.actions), actions=self.actions, full_version=full,
                      default=params["set_default"] and params["state"] == "present",
                      commands=[" ".join(c) for c in self.runner.calls])
        if self.diffs:
            result["diff"] = self.diffs
        result["warnings_list"] = self.warnings
        return result

    def _distro_packages(self, pkg_mgr: str) -> dict[str, str]:
        if pkg_mgr != "apt":
            return {}
        text = self.root.read("var/lib/dpkg/status", limit=256 * 1024 * 1024)
        return _nvidia.parse_dpkg_status(text, lambda name: name == "nvidia-cuda-toolkit")

    def _sources(self, distro: dict[str, t.Any], source: str, pkg_mgr: str) -> dict[str, bytes | None]:
        try:
            if source == "nvidia_repo":
                url = _nvidia_repo.check_repo_url(self.params.get("repo_url") or _nvidia_repo.default_repo_url(distro, _distro.arch_fact(self.root)))
                key = _nvidia_driver.load_key(self.params, self.fetch, self.files.current)
                return _nvidia_repo.nvidia_repo_files(pkg_mgr, url, key)
            if distro.get("id") == "debian":
                entries = _nvidia_repo.read_apt_sources(self.root.root, skip=[_nvidia_repo.DEBIAN_COMPONENTS_FILE])
                content = _nvidia_repo.debian_components_file(entries, distro.get("codename") or "")
                return {_nvidia_repo.DEBIAN_COMPONENTS_FILE: content.encode() if content else None}
        except (_nvidia_repo.RepoError, _nvidia_driver.DriverError) as exc:
            raise ToolkitError(exc.msg) from exc
        return {}

    def _present(self, pm: t.Any, distro: dict[str, t.Any], source: str, version: str, packages: list[str], path: str) -> None:
        params = self.params
        sources = self._sources(distro, source, pm.name)
        changed_sources = self._files(sources)
        state = pm.installed(packages)
        missing = [p for p in packages if state.get(p) is None]
        if missing:
            if self.check_mode:
                self.actions.append(f"would install {' '.join(missing)}")
            else:
                if params["update_cache"] or changed_sources:
                    pm.refresh(params["cache_valid_time"], force=changed_sources)
                candidates = pm.candidates(missing)
                absent = [p for p in missing if not candidates.get(p)]
                if absent:
                    raise ToolkitError(
                        f"The {source} source has no {', '.join(absent)}: "
                        + ("check that Debian's non-free component is reachable. " if source == "distro" else
                           "check repo_url (NVIDIA's repository or its mirror) carries that toolkit. ")
                        + "Nothing was installed."
                    )
                if pm.name == "apt" and params["check_space"]:
                    self._check_space(pm, missing)
                pm.install(missing)
                self.actions.append(f"installed {' '.join(missing)}")
        if params["set_default"]:
            if source == "distro":
                self._files({PROFILE: profile_script("/usr", with_paths=False)})
            else:
                self._default_link(path)
                self._files({PROFILE: profile_script(DEFAULT_LINK, with_paths=True)})

    def _check_space(self, pm: t.Any, names: list[str]) -> None:
        argv = pm._apt_get()[:1] + ["-q", "--assume-no", "-o", f"DPkg::Lock::Timeout={pm.lock_timeout}"] + pm._recommends() + ["install"] + names
        result = self.runner.run(argv, check=False)
        if result is None:
            return
        download, installed = parse_apt_space(result.out)
        message = space_shortfall(download, installed)
        if message:
            raise ToolkitError(message, download_bytes=download, installed_bytes=installed)

    def _default_link(self, path: str) -> None:
        link = self.root.path(DEFAULT_LINK.lstrip("/"))
        if os.path.islink(link):
            target = os.readlink(link)
            if target == "/etc/alternatives/cuda":
                current = os.path.realpath(link)
                if current != os.path.realpath(self.root.path(path.lstrip("/"))):
                    self.actions.append(f"{'would set' if self.check_mode else 'set'} the cuda alternative to {path}")
                    if not self.check_mode:
                        self.runner.run(["update-alternatives", "--set", "cuda", path])
                return
            if target == path:
                return
        elif os.path.exists(link):
            raise ToolkitError(f"{DEFAULT_LINK} is a directory, not a link (a runfile install?): move it away, or set set_default: false.")
        self.actions.append(f"{'would point' if self.check_mode else 'pointed'} {DEFAULT_LINK} at {path}")
        if not self.check_mode:
            tmp = link + ".mlhost-new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(path, tmp)
            os.replace(tmp, link)

    def _absent(self, pm: t.Any, packages: list[str], path: str) -> None:
        state = pm.installed(packages)
        present = [p for p in packages if state.get(p)]
        if present:
            self.actions.append(f"{'would remove' if self.check_mode else 'removed'} {' '.join(present)}")
            if not self.check_mode:
                pm.remove(present)
        link = self.root.path(DEFAULT_LINK.lstrip("/"))
        if os.path.islink(link) and os.readlink(link) == path:
            self.actions.append(f"{'would remove' if self.check_mode else 'removed'} {DEFAULT_LINK}")
            if not self.check_mode:
                os.unlink(link)
            self._files({PROFILE: None})
        elif path == DISTRO_PATH and present:
            self._files({PROFILE: None})
