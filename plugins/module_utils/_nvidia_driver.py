# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The nvidia_driver module's logic: plan the driver, check its source, then install, hold and configure.

PRIVATE to the collection: no compatibility promise outside it.

Order of work (each step idempotent, each change named in ``actions``):
validate the input -> sources (Debian's components, or NVIDIA's repository) ->
refresh the metadata when something is missing -> check that the asked branch,
flavor and version are what the source carries (refuse before installing) ->
unhold on a branch change -> install -> hold -> blacklist nouveau (and rebuild
the initramfs when that changed) -> enable the persistence daemon -> say whether
a reboot is needed, the way host_facts does.
"""

from __future__ import annotations

import datetime
import fnmatch
import platform
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _distro, _host, _nvidia, _nvidia_repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, PackageManager, backend
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

BLACKLIST_FILE = "/etc/modprobe.d/mlhost-blacklist-nouveau.conf"
BLACKLIST = (
    _nvidia_repo.MANAGED
    + "# nouveau claims NVIDIA GPUs before the nvidia module can: keep it out, at boot and in the initramfs.\n"
    + "blacklist nouveau\noptions nouveau modeset=0\n"
).encode()
PERSISTENCE_UNIT = "nvidia-persistenced.service"

# What the distributions carry (for messages and check mode without package lists;
# the real check asks the package manager).
DISTRO_BRANCHES = {("debian", "12"): "535", ("debian", "13"): "550"}

# Globs of the packages that make up an installed driver (held together).
APT_DRIVER_GLOBS = ["nvidia-*", "libnvidia-*", "libcuda1", "libcuda1-*", "xserver-xorg-video-nvidia*", "firmware-nvidia-*", "cuda-drivers*"]
RPM_DRIVER_GLOBS = ["nvidia-*", "kmod-nvidia*", "cuda-drivers*", "libnvidia-*", "xorg-x11-drv-nvidia*", "dkms-nvidia"]


class DriverError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class Plan(t.NamedTuple):
    pkg_mgr: str
    source: str
    flavor: str
    branch: str | None
    packages: list[str]          # to install (the driver's own and its companions)
    versioned: list[str]         # packages whose version is the driver's version
    headers: list[str]           # kernel headers for DKMS (optional in containers)
    module_stream: str | None    # dnf: nvidia-driver:<branch>-dkms|open
    files: dict[str, bytes | None]  # repository/source files wanted


def validate(params: dict[str, t.Any]) -> None:
    branch = params.get("branch") or ""
    version = params.get("version") or ""
    if branch and not re.fullmatch(r"\d{3}", branch):
        raise DriverError(f"branch {branch!r} is not a driver branch: give its three digits, for example 550.")
    if version:
        if not re.fullmatch(r"\d{3}\.\d+(\.\d+)?", version):
            raise DriverError(f"version {version!r} is not a driver version: give it in full, for example 550.163.01.")
        if branch and _compat.branch_of(version) != branch:
            raise DriverError(f"version {version} is not on branch {branch}: drop one, or make them agree.")
    if params["source"] == "nvidia_repo" and params["state"] == "present":
        key = params.get("repo_key") or ""
        if not key:
            raise DriverError(
                "source nvidia_repo needs repo_key: NVIDIA's repository signing key, as a path on the host or an https URL "
                "with repo_key_sha256 (the key is installed as the source's Signed-By keyring; apt-key is never used)."
            )
        if re.match(r"^[a-z]+://", key):
            if not key.startswith(("https://", "file://")) and not params.get("repo_key_sha256"):
                raise DriverError(f"repo_key {key} is a plain-http URL without repo_key_sha256: give the key's sha256 or an https URL.")
            if not params.get("repo_key_sha256"):
                raise DriverError(f"repo_key {key} is a URL: give repo_key_sha256 too, so the downloaded key is verified.")
        elif not key.startswith("/"):
            raise DriverError(f"repo_key {key!r} is neither an absolute path on the host nor a URL.")
        sha = params.get("repo_key_sha256") or ""
        if sha and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            raise DriverError("repo_key_sha256 must be 64 hexadecimal digits (sha256sum's output).")
    if params.get("repo_url"):
        try:
            _nvidia_repo.check_repo_url(params["repo_url"])
        except _nvidia_repo.RepoError as exc:
            raise DriverError(exc.msg) from exc
    for key in ("cache_valid_time", "lock_timeout"):
        if params[key] < 0:
            raise DriverError(f"{key} must be 0 or more seconds, got {params[key]}.")


def pick_source(params: dict[str, t.Any], distro: dict[str, t.Any]) -> str:
    source = params["source"]
    if source != "auto":
        return source
    if distro.get("id") in ("debian", "ubuntu"):
        wanted = params.get("branch") or (_compat.branch_of(params["version"]) if params.get("version") else "")
        carried = DISTRO_BRANCHES.get((distro.get("id"), distro.get("major")))
        if distro.get("id") == "ubuntu" or not wanted or wanted == carried:
            return "distro"
    return "nvidia_repo"


def pick_flavor(flavor: str, branch: str | None) -> str:
    """auto: NVIDIA's open kernel modules from branch 560 on (NVIDIA's default since then), else proprietary."""
    if flavor != "auto":
        return flavor
    return "open" if branch and int(branch) >= 560 else "proprietary"


def driver_packages(distro: dict[str, t.Any], source: str, flavor: str, branch: str | None, kernel: str,
                    server: bool = True) -> tuple[list[str], list[str], str | None]:
    """(packages, versioned packages, dnf module stream) for a distro, source, flavor and branch."""
    distro_id = distro.get("id")
    family = distro.get("family")
    is_open = flavor == "open"
    if source == "distro":
        if distro_id == "debian":
            kernel_pkg = "nvidia-open-kernel-dkms" if is_open else "nvidia-kernel-dkms"
            return ["nvidia-driver", kernel_pkg, "nvidia-smi", "nvidia-persistenced"], ["nvidia-driver", kernel_pkg, "nvidia-smi"], None
        if distro_id == "ubuntu":
            if not branch:
                raise DriverError("Ubuntu names its drivers by branch: set branch (for example 550).")
            suffix = ("-server" if server else "") + ("-open" if is_open else "")
            driver = f"nvidia-driver-{branch}{suffix}"
            return [driver, f"nvidia-utils-{branch}{'-server' if server else ''}"], [driver], None
        raise DriverError(
            f"{distro.get('name') or distro_id} does not ship the NVIDIA driver in its own repositories: use source: nvidia_repo."
        )
    # NVIDIA's CUDA repository
    if family == "debian":
        if is_open:
            name = f"nvidia-open-{branch}" if branch else "nvidia-open"
        else:
            name = f"cuda-drivers-{branch}" if branch else "cuda-drivers"
        return [name], [name], None
    if family == "redhat":
        if distro_id != "fedora" and distro.get("major") in ("8", "9"):
            stream = f"{branch or 'latest'}-{'open' if is_open else 'dkms'}"
            kmod = "kmod-nvidia-open-dkms" if is_open else "kmod-nvidia-latest-dkms"
            return ["nvidia-driver", "nvidia-driver-cuda", kmod], ["nvidia-driver"], f"nvidia-driver:{stream}"
        name = (f"nvidia-open-{branch}" if branch else "nvidia-open") if is_open else (f"cuda-drivers-{branch}" if branch else "cuda-drivers")
        return [name], [name], None
    raise DriverError(f"No NVIDIA driver packages are known for {distro.get('name') or distro_id}.")


def header_packages(distro: dict[str, t.Any], kernel: str) -> list[str]:
    if distro.get("family") == "debian":
        return [f"linux-headers-{kernel}"]
    if distro.get("family") == "redhat":
        return [f"kernel-devel-{kernel}", f"kernel-headers-{kernel}"]
    return []


def load_key(params: dict[str, t.Any], fetch: t.Callable[[str], bytes], read: t.Callable[[str], bytes | None]) -> bytes:
    source = params["repo_key"]
    if re.match(r"^[a-z]+://", source) and not source.startswith("file://"):
        data = fetch(source)
    else:
        path = source[len("file://"):] if source.startswith("file://") else source
        data = read(path)
        if data is None:
            raise DriverError(f"repo_key {path} does not exist or cannot be read on the host. Copy NVIDIA's key there first.")
    sha = (params.get("repo_key_sha256") or "").lower()
    if sha and _nvidia_repo.sha256_hex(data) != sha:
        raise DriverError(
            f"repo_key {source} has sha256 {_nvidia_repo.sha256_hex(data)}, not the repo_key_sha256 given ({sha}): "
            "nothing was changed. Check the key's source, then fix repo_key_sha256."
        )
    try:
        _nvidia_repo.check_key(data, f"repo_key {source}")
    except _nvidia_repo.RepoError as exc:
        raise DriverError(exc.msg) from exc
    return data


def make_plan(params: dict[str, t.Any], root: Sysroot, key: t.Callable[[], bytes], kernel: str | None = None) -> Plan:
    distro = _distro.distro_facts(root)
    pkg_mgr = params["pkg_mgr"] if params["pkg_mgr"] != "auto" else _distro.pkg_mgr_for(distro, root)
    if pkg_mgr not in ("apt", "dnf"):
        raise DriverError(
            f"No supported package manager on {distro.get('name') or 'this host'} (found {pkg_mgr or 'none'}): "
            "nvidia_driver supports apt and dnf hosts."
        )
    source = pick_source(params, distro)
    branch = params.get("branch") or (_compat.branch_of(params["version"]) if params.get("version") else None)
    if source == "distro" and branch and distro.get("id") == "debian":
        carried = DISTRO_BRANCHES.get((distro.get("id"), distro.get("major")))
        if carried and branch != carried:
            raise DriverError(
                f"{distro.get('name') or 'Debian'} carries only the {carried} driver branch; branch {branch} is not available "
                "from source: distro. Use source: nvidia_repo (NVIDIA's CUDA repository, or repo_url for a mirror) for "
                f"branch {branch}, or ask for branch {carried}. Nothing was changed."
            )
    flavor = pick_flavor(params["flavor"], branch or DISTRO_BRANCHES.get((distro.get("id"), distro.get("major"))))
    kernel = kernel or platform.release()
    packages, versioned, stream = driver_packages(distro, source, flavor, branch, kernel, params.get("server_packages", True))
    if pkg_mgr == "dnf" and params["hold"]:
        packages = packages + ["python3-dnf-plugin-versionlock"]
    files: dict[str, bytes | None] = {}
    try:
        if source == "nvidia_repo":
            url = _nvidia_repo.check_repo_url(params.get("repo_url") or _nvidia_repo.default_repo_url(distro, _distro.arch_fact(root)))
            files = _nvidia_repo.nvidia_repo_files(pkg_mgr, url, key())
        elif distro.get("id") == "debian":
            entries = _nvidia_repo.read_apt_sources(root.root, skip=[_nvidia_repo.DEBIAN_COMPONENTS_FILE])
            content = _nvidia_repo.debian_components_file(entries, distro.get("codename") or "")
            files = {_nvidia_repo.DEBIAN_COMPONENTS_FILE: content.encode() if content else None}
    except _nvidia_repo.RepoError as exc:
        raise DriverError(exc.msg) from exc
    headers = header_packages(distro, kernel) if params["kernel_headers"] else []
    return Plan(pkg_mgr, source, flavor, branch, packages, versioned, headers, stream, files)


# Reading the installed driver -------------------------------------------------------


def installed_set(runner: Runner, pkg_mgr: str, extra: t.Sequence[str] = ()) -> dict[str, dict[str, t.Any]]:
    """name -> {version, held} of the installed NVIDIA driver packages and of ``extra``, in one query."""
    found: dict[str, dict[str, t.Any]] = {}
    if pkg_mgr == "apt":
        patterns = APT_DRIVER_GLOBS + [e for e in extra if not any(fnmatch.fnmatchcase(e, g) for g in APT_DRIVER_GLOBS)]
        result = runner.run(["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + patterns,
                            check=False)
        for line in (result.out if result else "").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1][1:2] == "i":
                found[parts[0].split(":")[0]] = {"version": parts[2], "held": parts[1][:1] == "h"}
        return found
    patterns = RPM_DRIVER_GLOBS + [e for e in extra if not any(fnmatch.fnmatchcase(e, g) for g in RPM_DRIVER_GLOBS)]
    result = runner.run(["rpm", "-q", "-a", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"] + patterns, check=False)
    for line in (result.out if result else "").splitlines():
        if "\t" in line:
            name, dummy, version = line.partition("\t")
            found[name.strip()] = {"version": version.strip(), "held": False}
    return found


def driver_version_of(packages: dict[str, dict[str, t.Any]]) -> str | None:
    version, dummy = _nvidia.installed_driver({n: v["version"] for n, v in packages.items()})
    return version


def members(packages: dict[str, dict[str, t.Any]], driver: str | None, wanted: list[str]) -> list[str]:
    """The installed packages that belong to the driver: those of its version, and those asked for."""
    chosen = []
    for name, info in sorted(packages.items()):
        upstream = _nvidia.upstream_version(info["version"].split(":", 1)[-1]) if info["version"] else None
        if name in wanted or (driver and upstream == driver):
            chosen.append(name)
    return chosen


# Acting ----------------------------------------------------------------------------


class Driver:
    def __init__(self, params: dict[str, t.Any], runner: Runner, check_mode: bool, root: Sysroot,
                 fetch: t.Callable[[str], bytes], today: str | None = None) -> None:
        self.params = params
        self.runner = runner
        self.check_mode = check_mode
        self.root = root
        self.fetch = fetch
        self.today = today or datetime.date.today().isoformat()
        self.files = _nvidia_repo.FileSet(root.root)
        self.actions: list[str] = []
        self.warnings: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self._before: dict[str, dict[str, t.Any]] = {}
        self._would_install = False
        self._would_version: str | None = None

    def _key(self) -> bytes:
        return load_key(self.params, self.fetch, self.files.current)

    def _apply_files(self, files: dict[str, bytes | None]) -> bool:
        return self.files.bring(files, self.check_mode, self.actions, self.diffs)

    def _check_candidates(self, pm: PackageManager, plan: Plan, missing: list[str]) -> list[str]:
        """Refuse a source that lacks a package, carries another branch or mismatched versions. Returns headers to skip."""
        asked = [p for p in plan.packages if p in missing] + [h for h in plan.headers if h in missing]
        candidates = pm.candidates(asked + [p for p in plan.versioned if p not in asked])
        absent = [p for p in plan.packages if candidates.get(p) is None and p in missing]
        if absent:
            hint = ""
            if plan.source == "distro" and self.root_distro().get("id") == "debian":
                hint = " Debian carries the driver in non-free (and contrib for the open kernel modules): check that those sources are reachable."
            raise DriverError(
                f"The {plan.source} source has no {', '.join(absent)} for this host.{hint} Set source: nvidia_repo (or "
                "repo_url for a mirror) for other branches. Nothing was installed."
            )
        upstream = {p: _nvidia.upstream_version(candidates[p] or "") for p in plan.versioned if candidates.get(p)}
        branches = {p: v.split(".")[0] for p, v in upstream.items() if v}
        if plan.branch and plan.source == "distro":
            wrong = {p: upstream[p] for p, b in branches.items() if b != plan.branch}
            if wrong:
                offered = sorted(set(wrong.values()))[0]
                raise DriverError(
                    f"The distribution offers driver {offered} (branch {offered.split('.')[0]}), not branch {plan.branch}. "
                    f"Use source: nvidia_repo for branch {plan.branch}, or ask for branch {offered.split('.')[0]}. Nothing was installed."
                )
        distinct = sorted(set(v for v in upstream.values() if v))
        if len(distinct) > 1:
            listing = ", ".join(f"{p} {upstream[p]}" for p in plan.versioned if p in upstream)
            raise DriverError(
                f"The {plan.source} source offers mismatched versions for the {plan.flavor} driver ({listing}): they would not "
                "install together. "
                + ("Use flavor: proprietary, or source: nvidia_repo. " if plan.flavor == "open" else "Retry after the mirror has synced. ")
                + "Nothing was installed."
            )
        version = self.params.get("version")
        if version and distinct and distinct[0] != version:
            raise DriverError(
                f"The {plan.source} source offers driver {distinct[0]}, not version {version}. Leave version empty to take "
                f"{distinct[0]}, or point repo_url at a mirror that carries {version}. Nothing was installed."
            )
        skip = [h for h in plan.headers if h in missing and candidates.get(h) is None]
        if skip:
            if _distro.container_fact(self.root):
                self.warnings.append(
                    f"Kernel headers {', '.join(skip)} are not in the sources; skipped in this container (no module is built in a "
                    "container: the host's kernel loads the driver)."
                )
            else:
                raise DriverError(
                    f"The headers for the running kernel ({', '.join(skip)}) are not in the sources, so DKMS cannot build the "
                    "module: upgrade the kernel package, reboot into it, then rerun (or set kernel_headers: false when modules "
                    "come prebuilt). Nothing was installed."
                )
        return skip

    def root_distro(self) -> dict[str, t.Any]:
        return _distro.distro_facts(self.root)

    def run(self) -> dict[str, t.Any]:
        params = self.params
        validate(params)
        plan = make_plan(params, self.root, self._key)
        pm = backend(plan.pkg_mgr, self.runner, params["lock_timeout"], False)
        result: dict[str, t.Any] = {"changed": False, "pkg_mgr": plan.pkg_mgr, "source": plan.source, "flavor": plan.flavor,
                                    "branch": plan.branch}
        try:
            if params["state"] == "absent":
                self._absent(pm, plan)
            else:
                self._present(pm, plan, result)
        except PackageError as exc:
            raise DriverError(exc.msg, rc=getattr(exc.result, "rc", None), stdout=getattr(exc.result, "out", None),
                              stderr=getattr(exc.result, "err", None), cmd=exc.cmd) from exc
        after = installed_set(self.runner, plan.pkg_mgr, plan.packages) if (self.actions and not self.check_mode) else self._before
        installed = driver_version_of(after) if not (self.check_mode and self._would_install) else self._would_version
        loaded, dummy = _nvidia.loaded_driver(self.root)
        modules = _nvidia.loaded_modules(self.root)
        nvidia = {"installed_version": installed, "loaded_version": loaded, "module_loaded": "nvidia" in modules,
                  "nouveau_loaded": "nouveau" in modules}
        reasons = _host.reboot_reasons(nvidia, self.root) if installed else []
        result.update(
            changed=bool(self.actions),
            actions=self.actions,
            packages=sorted(members(after, driver_version_of(after), plan.packages)) if params["state"] == "present" else [],
            installed_version=installed,
            loaded_version=loaded,
            reboot_required=bool(reasons),
            reboot_reasons=reasons,
            commands=[" ".join(c) for c in self.runner.calls],
        )
        distro = self.root_distro()
        branch = plan.branch or (installed.split(".")[0] if installed else None) or (
            DISTRO_BRANCHES.get((distro.get("id"), distro.get("major"))) if plan.source == "distro" else None
        )
        result["planned_branch"] = branch
        if branch:
            status = _compat.branch_status(branch, self.today)
            result["branch_status"] = status
            if status["eol_passed"]:
                self.warnings.append(
                    f"Driver branch {branch} ({status['designation']}) reached NVIDIA's end of life in {status['eol']}: plan a "
                    "move to a supported branch (580 is the current long-term support branch)."
                )
        if self.diffs:
            result["diff"] = self.diffs
        result["warnings_list"] = self.warnings
        return result

    def _present(self, pm: PackageManager, plan: Plan, result: dict[str, t.Any]) -> None:
        params = self.params
        files_changed = self._apply_files(plan.files)
        before = installed_set(self.runner, plan.pkg_mgr, plan.packages + plan.headers)
        self._before = before
        current = driver_version_of(before)
        wanted_branch = plan.branch
        branch_change = bool(current and wanted_branch and current.split(".")[0] != wanted_branch)
        version_change = bool(current and params.get("version") and current != params["version"])
        missing = [p for p in plan.packages + plan.headers if p not in before]
        skip_headers: list[str] = []
        if missing or branch_change or version_change:
            if self.check_mode:
                if pm.cache_age() is not None and not files_changed:
                    skip_headers = self._check_candidates(pm, plan, missing)
                else:
                    self.warnings.append("Package lists are absent or the sources change: the source's branch and versions "
                                         "were not checked in check mode.")
            else:
                if params["update_cache"] or files_changed:
                    pm.refresh(params["cache_valid_time"], force=files_changed)
                skip_headers = self._check_candidates(pm, plan, missing)
        to_install = [m for m in missing if m not in skip_headers]
        if branch_change or version_change:
            held = [n for n, info in before.items() if info["held"]]
            what = f"branch {current.split('.')[0]} -> {wanted_branch}" if branch_change else f"{current} -> {params['version']}"
            self.actions.append(f"driver change ({what}): unhold {', '.join(held) or 'nothing'}, upgrade, hold again")
            if held and not self.check_mode:
                pm.unhold(held)
            to_install = sorted(set(to_install) | set(plan.packages))
        if to_install:
            self.actions.append(f"{'would install' if self.check_mode else 'installed'} {' '.join(to_install)}")
            self._would_install = True
            if plan.module_stream:
                self.actions.append(f"enable dnf module stream {plan.module_stream}")
                if not self.check_mode:
                    self.runner.run(["dnf", "-y", "-q", "module", "reset", "nvidia-driver"], check=False)
                    pm._run(["dnf", "-y", "-q", "module", "enable", plan.module_stream], "dnf module enable",
                            "Check that NVIDIA's repository carries that stream.")
            if not self.check_mode:
                pm.install(to_install)
        after = installed_set(self.runner, plan.pkg_mgr, plan.packages + plan.headers) if (to_install and not self.check_mode) else before
        version = driver_version_of(after)
        self._would_version = version or (params.get("version") or None)
        if params["hold"]:
            # Installing: hold every package of the driver's version. Afterwards only the packages asked for are
            # checked: packages of that version that later installs bring (a toolkit's libnvidia-*) depend on them
            # with exact versions, and a rerun must not change because another role ran in between.
            belong = members(after, version, plan.packages) if to_install else [p for p in plan.packages if p in after]
            if plan.pkg_mgr == "apt":
                unheld = [n for n in belong if not after.get(n, {}).get("held")]
            else:
                held_now = pm.held()
                unheld = [n for n in belong if n not in held_now]
            if self.check_mode and self._would_install:
                unheld = sorted(set(unheld) | set(p for p in plan.packages if not p.startswith("python3-dnf")))
            unheld = [n for n in unheld if not n.startswith("python3-dnf")]
            if unheld:
                self.actions.append(f"{'would hold' if self.check_mode else 'held'} {' '.join(unheld)}")
                if not self.check_mode:
                    pm.hold(unheld)
        if params["blacklist_nouveau"]:
            if self._apply_files({BLACKLIST_FILE: BLACKLIST}):
                self._initramfs()
        if params["persistence"]:
            self._persistence()

    def _initramfs(self) -> None:
        for argv in (["update-initramfs", "-u", "-k", "all"], ["dracut", "--force", "--regenerate-all"]):
            program = self.runner.find(argv[0], ["/usr/sbin", "/sbin"])
            if program:
                self.actions.append(f"{'would rebuild' if self.check_mode else 'rebuilt'} the initramfs ({argv[0]})")
                if not self.check_mode:
                    self.runner.run([program] + argv[1:], timeout=900)
                return
        self.warnings.append("No initramfs tool (update-initramfs or dracut) on the host: nouveau is blacklisted for module "
                             "loading, but an initramfs that carries it is not rebuilt.")

    def _persistence(self) -> None:
        systemctl = self.runner.find("systemctl")
        if not systemctl:
            self.warnings.append("systemctl is not on the host: the persistence daemon was not enabled.")
            return
        state = self.runner.run([systemctl, "is-enabled", PERSISTENCE_UNIT], check=False)
        status = (state.out.strip().splitlines() or [""])[0] if state else ""
        if status in ("enabled", "static", "alias", "indirect", "generated"):
            return
        if self.check_mode:
            self.actions.append(f"would enable {PERSISTENCE_UNIT}")
            return
        result = self.runner.run([systemctl, "enable", PERSISTENCE_UNIT], check=False)
        if result is None or result.rc != 0:
            raise DriverError(
                f"Could not enable {PERSISTENCE_UNIT}: {(result.err or result.out).strip() if result else 'systemctl missing'}. "
                "Is the nvidia-persistenced package installed? Set persistence: false to skip it."
            )
        self.actions.append(f"enabled {PERSISTENCE_UNIT}")

    def _absent(self, pm: PackageManager, plan: Plan) -> None:
        before = installed_set(self.runner, plan.pkg_mgr, plan.packages)
        self._before = before
        version = driver_version_of(before)
        belong = members(before, version, plan.packages)
        if belong:
            held = [n for n in belong if before[n]["held"]] if plan.pkg_mgr == "apt" else [n for n in belong if n in pm.held()]
            if held:
                self.actions.append(f"{'would unhold' if self.check_mode else 'unheld'} {' '.join(held)}")
                if not self.check_mode:
                    pm.unhold(held)
            self.actions.append(f"{'would remove' if self.check_mode else 'removed'} {' '.join(belong)}")
            if not self.check_mode:
                pm.remove(belong)
        if self._apply_files({BLACKLIST_FILE: None}):
            self._initramfs()
