# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The package layer: one interface, an apt backend and a dnf backend.

PRIVATE to the collection: no compatibility promise outside it.

Every backend answers, in one command each: which of these packages are
installed (``installed``), which exist in the configured sources
(``available``), what an install would bring (``plan``); and it refreshes
the metadata only when it is older than a validity time (``refresh``),
installs, removes, holds and unholds. Commands go through the one door
(``_run.Runner``) with a fixed C locale, ``DEBIAN_FRONTEND=noninteractive``
and a package-lock timeout.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro, _progress
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

APT_LISTS = "/var/lib/apt/lists"

# The options of every module that installs packages (doc fragment mlinfra.mlhost.packages).
PACKAGE_MANAGER_OPTIONS: dict[str, dict[str, t.Any]] = {
    "pkg_mgr": {"type": "str", "choices": ["auto", "apt", "dnf"], "default": "auto"},
    "update_cache": {"type": "bool", "default": True},
    "cache_valid_time": {"type": "int", "default": 86400},
    "lock_timeout": {"type": "int", "default": 300},
}
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"
# A package-name prefix offered() may query: no glob or option characters reach the command line.
OFFERED_PREFIX = re.compile(r"[a-z0-9][a-z0-9.+-]{1,63}")


class PackageError(ModuleError):
    """A package operation failed; ``msg`` says what and what to do, ``result`` holds the command's output."""

    def __init__(self, msg: str, result: t.Any = None, cmd: list[str] | None = None) -> None:
        super().__init__(msg, cmd=cmd, rc=getattr(result, "rc", None), stdout=getattr(result, "out", None),
                         stderr=getattr(result, "err", None))
        self.result = result
        self.cmd = cmd


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


class PackageManager:
    """The interface both backends implement."""

    name = ""

    def __init__(self, runner: Runner, lock_timeout: int = 300) -> None:
        self.runner = runner
        self.lock_timeout = lock_timeout
        self.refreshed = False
        self.repaired = False

    # Reading -------------------------------------------------------------
    def installed(self, names: list[str]) -> dict[str, str | None]:
        raise NotImplementedError

    def available(self, names: list[str]) -> set[str]:
        raise NotImplementedError

    def cache_age(self) -> float | None:
        """Seconds since the metadata was last refreshed; None when there is none."""
        raise NotImplementedError

    def plan(self, names: list[str]) -> list[str] | None:
        """The packages an install of ``names`` would bring, dependencies included (None: unknown)."""
        return None

    def held(self) -> set[str]:
        raise NotImplementedError

    def installed_matching(self, patterns: t.Sequence[str], holds: bool = False) -> dict[str, tuple[str, bool]]:
        """name -> (version, held) of the installed packages matching any of ``patterns`` (globs or names), in one query.

        ``holds``: also read the hold state where the installed query does not carry it (dnf's versionlock list,
        one more command, only when something matched). Without it, a backend that cannot tell says not held."""
        raise NotImplementedError

    def candidates(self, names: list[str]) -> dict[str, str | None]:
        """name -> the version an install would bring (None: not in the sources)."""
        raise NotImplementedError

    def simulate(self, names: list[str]) -> dict[str, str] | None:
        """name -> version of every package an install of ``names`` would bring (dependencies included);
        None when the backend cannot tell without changing the host (no package lists, no simulation)."""
        return None

    def offered(self, prefix: str) -> dict[str, str]:
        """name -> candidate version of every package in the sources whose name starts with ``prefix``
        ('cuda-toolkit-'), in two commands at most; {} when there are no package lists yet."""
        return {}

    def space(self, names: list[str]) -> tuple[int | None, int | None]:
        """(download bytes, installed bytes) an install of ``names`` needs; (None, None) when unknown."""
        return None, None

    def versions(self, names: list[str]) -> dict[str, list[str]]:
        """name -> every version the sources offer of it, in one command ({} where the backend cannot list them)."""
        return {}

    def module_streams(self, module: str) -> set[str]:
        """Every stream of a module the sources offer (dnf only; set() elsewhere)."""
        return set()

    def enabled_streams(self, module: str) -> set[str]:
        """The enabled streams of a module, 'name:stream' (dnf only; set() elsewhere)."""
        return set()

    def reset_module(self, module: str) -> None:
        """Enable no stream of a module any more (dnf only)."""
        raise ModuleError(f"The {self.name} package manager has no modules: {module} cannot be reset.")

    def enable_module_stream(self, stream: str) -> None:
        """Enable a module stream (``name:stream``) before an install (dnf only)."""
        raise ModuleError(f"The {self.name} package manager has no module streams: {stream} cannot be enabled.")

    # Changing ------------------------------------------------------------
    def refresh(self, valid_time: int, force: bool = False) -> bool:
        """Refresh the metadata when older than ``valid_time`` seconds; True when it ran."""
        age = self.cache_age()
        if not force and age is not None and age < valid_time:
            return False
        self._refresh()
        self.refreshed = True
        return True

    def _refresh(self) -> None:
        raise NotImplementedError

    def install(self, names: list[str]) -> None:
        raise NotImplementedError

    def remove(self, names: list[str]) -> None:
        raise NotImplementedError

    def hold(self, names: list[str]) -> None:
        raise NotImplementedError

    def unhold(self, names: list[str]) -> None:
        raise NotImplementedError

    # Helpers ---------------------------------------------------------------
    def _run(self, argv: list[str], what: str, fix: str) -> t.Any:
        return self._check(self.runner.run(argv, check=False), argv, what, fix)

    def _check(self, result: t.Any, argv: list[str], what: str, fix: str) -> t.Any:
        if result is None:
            raise PackageError(f"{argv[0]} is not installed on this host; {fix}", cmd=argv)
        if result.rc != 0:
            holder = lock_holder(result.err, result.out)
            if holder:
                path, pid, name = holder
                who = (f"process {pid}" + (f" ({name})" if name else "")) if pid else "another process"
                raise PackageError(
                    f"{what} failed (rc={result.rc}): the package lock {path} is held by {who}; waited {self.lock_timeout} s "
                    "(lock_timeout). Let that process finish (unattended-upgrades and other package runs take it), "
                    "or raise lock_timeout, then rerun. Nothing was installed.",
                    result=result,
                    cmd=argv,
                )
            raise PackageError(
                f"{what} failed (rc={result.rc}): {_tail(result.err or result.out, 8)}. {fix}", result=result, cmd=argv
            )
        return result


class Apt(PackageManager):
    name = "apt"

    def __init__(self, runner: Runner, lock_timeout: int = 300, install_recommends: bool = False) -> None:
        super().__init__(runner, lock_timeout)
        self.install_recommends = install_recommends

    def _apt_get(self) -> list[str]:
        return ["apt-get", "-q", "-y", "-o", f"DPkg::Lock::Timeout={self.lock_timeout}"]

    def installed(self, names: list[str]) -> dict[str, str | None]:
        state: dict[str, str | None] = {name: None for name in names}
        if not names:
            return state
        result = self.runner.run(
            ["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + list(names), check=False
        )
        if result is None:
            raise PackageError("dpkg-query is not on this host: is it a Debian-family system? Set pkg_mgr to match the host.")
        return parse_dpkg_query(result.out, state)

    def available(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        result = self._run(["apt-cache", "policy"] + list(names), "apt-cache policy", "Check the apt sources.")
        return parse_apt_policy(result.out) & set(names)

    def cache_age(self) -> float | None:
        try:
            lists = [n for n in os.listdir(APT_LISTS) if n.endswith(("_Packages", "_Packages.lz4", "_Packages.gz", "_Packages.xz"))]
        except OSError:
            lists = []
        if not lists:
            return None
        newest = max(os.path.getmtime(path) for path in (APT_STAMP, APT_LISTS) if os.path.exists(path))
        return max(0.0, time.time() - newest)

    def _refresh(self) -> None:
        fix = (
            "A source in /etc/apt/sources.list or /etc/apt/sources.list.d/ is unreachable or broken: "
            "fix the mirror (or the proxy), then rerun; nothing was installed."
        )
        argv = self._apt_get() + ["update"]
        result = self._run(argv, "apt-get update", fix)
        failures = update_failures(result.err, result.out)
        if failures:
            # apt-get update exits 0 when a source cannot be fetched: it only warns.
            raise PackageError(f"apt-get update failed: {'; '.join(failures)}. {fix}", result=result, cmd=argv)
        os.makedirs(os.path.dirname(APT_STAMP), exist_ok=True)
        with open(APT_STAMP, "a", encoding="utf-8"):
            os.utime(APT_STAMP, None)

    def _simulation(self, names: list[str]) -> str | None:
        """What ``apt-get -s install names`` prints (None: no lists yet, or apt refused)."""
        if not names or self.cache_age() is None:
            return None
        argv = self._apt_get() + ["-s"] + self._recommends() + ["install"] + list(names)
        result = self.runner.run(argv, check=False)
        if result is None or result.rc != 0:
            return None
        return result.out

    def plan(self, names: list[str]) -> list[str] | None:
        out = self._simulation(names)
        return None if out is None else parse_apt_simulation(out)

    def _recommends(self) -> list[str]:
        return [] if self.install_recommends else ["--no-install-recommends"]

    def install(self, names: list[str]) -> None:
        self._change(
            self._apt_get()
            + ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
            + self._recommends()
            + ["install"]
            + list(names),
            "apt-get install " + " ".join(names),
            "Nothing else was changed; fix the cause above and rerun.",
        )

    def remove(self, names: list[str]) -> None:
        self._change(self._apt_get() + ["remove"] + list(names), "apt-get remove " + " ".join(names), "Fix the cause above and rerun.")

    def _change(self, argv: list[str], what: str, fix: str) -> t.Any:
        """Run an apt-get command that changes packages; repair an interrupted dpkg once, then retry."""
        # Progress (an async run of the collection's action plugin, _progress.py): apt's own status lines go to the
        # status file the poller reads; without it the command is the same as ever.
        status_fd = _progress.open_status_fd()
        if status_fd is not None:
            argv = argv[:1] + ["-o", f"APT::Status-Fd={status_fd}"] + argv[1:]
        fds: dict[str, t.Any] = {"pass_fds": [status_fd]} if status_fd is not None else {}
        try:
            result = self.runner.run(argv, check=False, **fds)
            if result is not None and result.rc != 0 and dpkg_interrupted(result.err, result.out):
                # A run killed mid-install leaves dpkg's journal behind and apt refuses everything until
                # 'dpkg --configure -a' finishes the half-done work.
                self.repair()
                result = self.runner.run(argv, check=False, **fds)
        finally:
            if status_fd is not None:
                os.close(status_fd)
        return self._check(result, argv, what, fix)

    def repair(self) -> None:
        """Finish an interrupted dpkg run (``dpkg --configure -a``)."""
        self._run(
            ["dpkg", "--force-confdef", "--force-confold", "--configure", "-a"],
            "dpkg --configure -a (repairing an interrupted dpkg run)",
            "dpkg could not finish the interrupted run: see 'dpkg --audit', fix the package it names, then rerun.",
        )
        self.repaired = True

    def candidates(self, names: list[str]) -> dict[str, str | None]:
        """name -> the version an install would bring (None: not in the sources)."""
        if not names:
            return {}
        result = self._run(["apt-cache", "policy"] + list(names), "apt-cache policy", "Check the apt sources.")
        found = parse_apt_candidates(result.out)
        return {name: found.get(name) for name in names}

    def offered(self, prefix: str) -> dict[str, str]:
        if not OFFERED_PREFIX.fullmatch(prefix) or self.cache_age() is None:
            return {}
        result = self._run(["apt-cache", "pkgnames", prefix], "apt-cache pkgnames", "Check the apt sources.")
        names = sorted({n.strip() for n in result.out.splitlines() if n.strip().startswith(prefix)})
        if not names:
            return {}
        return {n: v for n, v in self.candidates(names).items() if v}

    def held(self) -> set[str]:
        result = self._run(["apt-mark", "showhold"], "apt-mark showhold", "Check dpkg's state.")
        return {line.strip().split(":")[0] for line in result.out.splitlines() if line.strip()}

    def installed_matching(self, patterns: t.Sequence[str], holds: bool = False) -> dict[str, tuple[str, bool]]:
        if not patterns:
            return {}
        result = self.runner.run(
            ["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + query_patterns(patterns), check=False
        )
        if result is None:
            raise PackageError("dpkg-query is not on this host: is it a Debian-family system? Set pkg_mgr to match the host.")
        return parse_dpkg_query_held(result.out)

    def simulate(self, names: list[str]) -> dict[str, str] | None:
        out = self._simulation(names)
        return None if out is None else parse_apt_simulation_versions(out)

    def space(self, names: list[str]) -> tuple[int | None, int | None]:
        if not names:
            return None, None
        argv = ["apt-get", "-q", "--assume-no", "-o", f"DPkg::Lock::Timeout={self.lock_timeout}"] + self._recommends() + ["install"] + list(names)
        result = self.runner.run(argv, check=False)
        if result is None:
            return None, None
        return parse_apt_space(result.out)

    def hold(self, names: list[str]) -> None:
        self._run(["apt-mark", "hold"] + list(names), "apt-mark hold", "Check dpkg's state.")

    def unhold(self, names: list[str]) -> None:
        self._run(["apt-mark", "unhold"] + list(names), "apt-mark unhold", "Check dpkg's state.")


class Dnf(PackageManager):
    name = "dnf"

    def _dnf(self) -> list[str]:
        return ["dnf", "-y", "-q", "--setopt=install_weak_deps=False"]

    def installed(self, names: list[str]) -> dict[str, str | None]:
        state: dict[str, str | None] = {name: None for name in names}
        if not names:
            return state
        result = self.runner.run(
            ["rpm", "-q", "--whatprovides", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"] + list(names),
            check=False,
        )
        if result is None:
            raise PackageError("rpm is not on this host: is it a RHEL-family system? Set pkg_mgr to match the host.")
        return parse_rpm_whatprovides(result.out, names, state)

    def available(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        result = self._run(
            ["dnf", "-q", "repoquery", "--qf", "%{name}\\n"] + list(names), "dnf repoquery", "Check the dnf repositories."
        )
        found = {line.strip() for line in result.out.splitlines() if line.strip()}
        return {name for name in names if name in found}

    def candidates(self, names: list[str]) -> dict[str, str | None]:
        if not names:
            return {}
        result = self._run(
            ["dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n"] + list(names),
            "dnf repoquery",
            "Check the dnf repositories.",
        )
        found: dict[str, str] = {}
        for line in result.out.splitlines():
            name, dummy, version = line.partition("\t")
            if dummy and version.strip():
                found.setdefault(name.strip(), version.strip())
        return {name: found.get(name) for name in names}

    def cache_age(self) -> float | None:
        return None  # dnf keeps its own metadata_expire; makecache is cheap when fresh

    def offered(self, prefix: str) -> dict[str, str]:
        if not OFFERED_PREFIX.fullmatch(prefix):
            return {}
        result = self._run(
            ["dnf", "-q", "repoquery", "--latest-limit", "1", "--qf", "%{name}\\t%{version}-%{release}\\n", prefix + "*"],
            "dnf repoquery",
            "Check the dnf repositories.",
        )
        found: dict[str, str] = {}
        for line in result.out.splitlines():
            name, tab, version = line.partition("\t")
            if tab and name.strip().startswith(prefix) and version.strip():
                found.setdefault(name.strip(), version.strip())
        return found

    def refresh(self, valid_time: int, force: bool = False) -> bool:
        self._run(
            ["dnf", "-q", "makecache", f"--setopt=metadata_expire={int(valid_time)}"],
            "dnf makecache",
            "A repository in /etc/yum.repos.d/ is unreachable or broken: fix the mirror (or the proxy), then rerun; "
            "nothing was installed.",
        )
        self.refreshed = True
        return True

    def install(self, names: list[str]) -> None:
        self._run(self._dnf() + ["install"] + list(names), "dnf install " + " ".join(names), "Fix the cause above and rerun.")

    def remove(self, names: list[str]) -> None:
        self._run(self._dnf() + ["remove"] + list(names), "dnf remove " + " ".join(names), "Fix the cause above and rerun.")

    def held(self) -> set[str]:
        result = self._run(
            ["dnf", "-q", "versionlock", "list"], "dnf versionlock list", "Install the versionlock plugin (python3-dnf-plugin-versionlock)."
        )
        return parse_versionlock_list(result.out)

    def installed_matching(self, patterns: t.Sequence[str], holds: bool = False) -> dict[str, tuple[str, bool]]:
        if not patterns:
            return {}
        result = self.runner.run(
            ["rpm", "-q", "-a", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"] + query_patterns(patterns), check=False
        )
        if result is None:
            raise PackageError("rpm is not on this host: is it a RHEL-family system? Set pkg_mgr to match the host.")
        found: dict[str, str] = {}
        for line in result.out.splitlines():
            if "\t" in line:
                name, dummy, version = line.partition("\t")
                found[name.strip()] = version.strip()
        locked = self.held() if (holds and found) else set()
        return {name: (version, name in locked) for name, version in found.items()}

    def reset_module(self, module: str) -> None:
        """``dnf module reset``: no stream of ``module`` enabled (nor disabled) any more."""
        self._run(["dnf", "-y", "-q", "module", "reset", module], "dnf module reset", "Check the dnf repositories.")

    def enable_module_stream(self, stream: str) -> None:
        """``dnf module reset`` of the stream's module (a failure there is no error: it may never have been enabled),
        then ``dnf module enable``."""
        module = stream.split(":", 1)[0]
        self.runner.run(["dnf", "-y", "-q", "module", "reset", module], check=False)
        self._run(["dnf", "-y", "-q", "module", "enable", stream], "dnf module enable",
                  "Check that the repository carries that module stream.")

    def module_streams(self, module: str) -> set[str]:
        """Every stream of ``module`` the repositories offer (``dnf module list``): set() when none is offered (dnf
        answers 'No matching Modules to list'); PackageError when dnf fails otherwise."""
        argv = ["dnf", "-q", "module", "list", module]
        result = self.runner.run(argv, check=False)
        if result is None:
            raise PackageError("dnf is not on this host: is it a RHEL-family system? Set pkg_mgr to match the host.", cmd=argv)
        if result.rc != 0:
            if "No matching Modules" in f"{result.out}\n{result.err}":
                return set()
            self._check(result, argv, "dnf module list", "Check the dnf repositories.")
        return parse_dnf_module_streams(result.out, module)

    def versions(self, names: list[str]) -> dict[str, list[str]]:
        """name -> every version the repositories offer of it ('3:590.48.01-1.el9', as repoquery prints them), in one
        ``dnf repoquery``; a name the repositories lack is absent."""
        if not names:
            return {}
        result = self._run(
            ["dnf", "-q", "repoquery", "--qf", "%{name}\\t%{epoch}:%{version}-%{release}\\n"] + list(names),
            "dnf repoquery",
            "Check the dnf repositories.",
        )
        return parse_dnf_versions(result.out, names)

    def simulate(self, names: list[str]) -> dict[str, str] | None:
        """name -> version of every package ``dnf install names`` would bring, read from the transaction dnf prints
        before it stops at ``--assumeno``; None when dnf refused (a conflict, a name it lacks) or printed no table."""
        if not names:
            return None
        result = self.runner.run(["dnf", "--assumeno", "--setopt=install_weak_deps=False", "install"] + list(names), check=False)
        if result is None:
            return None
        found = parse_dnf_transaction(result.out)
        return found or None

    def enabled_streams(self, module: str) -> set[str]:
        """The enabled streams of a dnf module (``name:stream``), from ``dnf module list --enabled``."""
        result = self.runner.run(["dnf", "-q", "module", "list", "--enabled", module], check=False)
        if result is None or result.rc != 0:
            return set()
        return parse_dnf_module_list(result.out, module)

    def hold(self, names: list[str]) -> None:
        self._run(["dnf", "-q", "versionlock", "add"] + list(names), "dnf versionlock add", "Install the versionlock plugin.")

    def unhold(self, names: list[str]) -> None:
        self._run(["dnf", "-q", "versionlock", "delete"] + list(names), "dnf versionlock delete", "Install the versionlock plugin.")


# Parsers (pure, unit-tested on captured output) ------------------------------


def parse_dpkg_query(text: str, state: dict[str, str | None]) -> dict[str, str | None]:
    """``dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n'``: 'ii ' means installed."""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, status, version = parts
        name = name.split(":")[0]
        # db:Status-Abbrev: wanted action (i install, h hold, ...), then the state (i installed).
        if name in state and status[1:2] == "i":
            state[name] = version
    return state


def parse_dpkg_query_held(text: str) -> dict[str, tuple[str, bool]]:
    """name -> (version, held) of the installed packages in ``dpkg-query -W`` output ('hi ' is held and installed)."""
    found: dict[str, tuple[str, bool]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1][1:2] == "i":
            found[parts[0].split(":")[0]] = (parts[2], parts[1][:1] == "h")
    return found


def query_patterns(patterns: t.Sequence[str]) -> list[str]:
    """``patterns`` without the names another of them (a glob) already matches, in order, each once."""
    globs = [p for p in patterns if any(c in p for c in "*?[")]
    out: list[str] = []
    for pattern in patterns:
        if pattern in out or (pattern not in globs and any(fnmatch.fnmatchcase(pattern, g) for g in globs)):
            continue
        out.append(pattern)
    return out


def parse_apt_simulation_versions(text: str) -> dict[str, str]:
    """name -> version from the 'Inst name [old] (version ...)' lines of ``apt-get -s install``."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)", line)
        if match:
            found[match.group(1).split(":")[0]] = match.group(2)
    return found


def parse_dnf_module_list(text: str, module: str) -> set[str]:
    """Enabled streams ('name:stream') of ``module`` in ``dnf module list --enabled``: rows 'name stream [e] ...'."""
    found = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == module and "[e]" in line:
            found.add(f"{module}:{parts[1].replace('[e]', '').strip()}")
    return found


def parse_dnf_module_streams(text: str, module: str) -> set[str]:
    """Every stream of ``module`` in ``dnf module list`` (rows 'name stream [d][e] profiles summary'); the repository
    headers, the column titles, the hint line and anything else are skipped."""
    found = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == module:
            stream = parts[1].split("[", 1)[0].strip()
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stream):
                found.add(stream)
    return found


def parse_dnf_versions(text: str, names: t.Sequence[str]) -> dict[str, list[str]]:
    """name -> versions from 'name<TAB>epoch:version-release' lines, each once, in the order printed; lines of other
    names or of another shape are skipped."""
    wanted = set(names)
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, tab, version = line.strip().partition("\t")
        version = version.strip()
        if tab and name in wanted and re.fullmatch(r"(?:[0-9]+:)?[0-9][A-Za-z0-9._+~^]*-[A-Za-z0-9._+~^]+", version):
            versions = found.setdefault(name, [])
            if version not in versions:
                versions.append(version)
    return found


def parse_dnf_transaction(text: str) -> dict[str, str]:
    """name -> [epoch:]version-release of the packages a dnf 4 transaction table would install or upgrade (rows
    ' name  arch  [epoch:]version-release  repository  size' under 'Installing:', 'Upgrading:', 'Installing
    dependencies:' and the like); removals and skipped rows are left out."""
    evr = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9._+~^]*-[A-Za-z0-9._+~^]+")
    found: dict[str, str] = {}
    section = ""
    pending = ""  # a name too long for its column: dnf prints the rest of the row on the next line
    for line in text.splitlines():
        stripped = line.strip()
        if not line.startswith(" ") and stripped.endswith(":"):
            section, pending = stripped.lower(), ""
            continue
        if not stripped or not line.startswith(" ") or not section.startswith(("installing", "upgrading", "downgrading", "reinstalling")):
            pending = ""
            continue
        parts = stripped.split()
        if len(parts) == 1:
            pending = parts[0]
        elif pending and len(parts) >= 3 and evr.fullmatch(parts[1]):
            found[pending], pending = parts[1], ""
        elif len(parts) >= 4 and evr.fullmatch(parts[2]):
            found[parts[0]], pending = parts[2], ""
    return found


def update_failures(stderr: str, stdout: str = "") -> list[str]:
    """The sources ``apt-get update`` could not fetch.

    From stdout's 'Err:N URI suite file' lines and the first reason line under each (apt 2.x),
    else from stderr's 'W: Failed to fetch URL  reason' lines.
    """
    lines = (stdout or "").splitlines()
    from_stdout = []
    for index, line in enumerate(lines):
        if re.match(r"^Err:\d+ ", line):
            reason = lines[index + 1].strip() if index + 1 < len(lines) and lines[index + 1].startswith(" ") else ""
            from_stdout.append(f"{line.split(' ', 1)[1].strip()}: {reason}".rstrip(": "))
    if from_stdout and re.search(r"^[WE]: (Failed to fetch|Some index files failed)", stderr or "", re.M):
        return from_stdout
    failures = [
        re.sub(r"\s+", " ", line.split("Failed to fetch", 1)[1]).strip()
        for line in (stderr or "").splitlines()
        if re.match(r"^[WE]: Failed to fetch", line)
    ]
    if not failures and re.search(r"^[WE]: Some index files failed to download", stderr or "", re.M):
        failures.append("some index files failed to download")
    return failures


def dpkg_interrupted(stderr: str, stdout: str = "") -> bool:
    """True when apt refused to run because an earlier dpkg run was interrupted."""
    return bool(re.search(r"dpkg was interrupted, you must manually run '(?:sudo )?dpkg --configure -a'", f"{stderr}\n{stdout}"))


def lock_holder(stderr: str, stdout: str = "") -> tuple[str, str | None, str | None] | None:
    """(lock path, holder pid, holder name) from apt's 'Could not get lock' error; None when no lock was in the way."""
    text = f"{stderr}\n{stdout}"
    match = re.search(r"Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]*)\))?", text)
    if match:
        return match.group(1), match.group(2), match.group(3)
    match = re.search(r"Could not get lock (\S+?)\.?(?: - |\s*$)", text, re.M) or re.search(
        r"Unable to acquire the dpkg frontend lock \((\S+)\)", text
    )
    if match:
        return match.group(1), None, None
    return None


def parse_apt_policy(text: str) -> set[str]:
    """Names with a candidate version in ``apt-cache policy`` output (unknown names print nothing)."""
    found: set[str] = set()
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1].split(":")[0]
        elif current and line.strip().startswith("Candidate:"):
            if line.split(":", 1)[1].strip() != "(none)":
                found.add(current)
    return found


def parse_apt_candidates(text: str) -> dict[str, str | None]:
    """name -> candidate version from ``apt-cache policy`` ('(none)' gives None)."""
    found: dict[str, str | None] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1].split(":")[0]
            found.setdefault(current, None)
        elif current and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            found[current] = None if value == "(none)" else value
    return found


def parse_apt_space(text: str) -> tuple[int | None, int | None]:
    """(download bytes, installed bytes) from apt-get's 'Need to get' and 'After this operation' lines."""
    units = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}

    def size(pattern: str) -> int | None:
        match = re.search(pattern, text)
        if not match:
            return None
        return int(float(match.group(1).replace(",", "")) * units[match.group(2)])

    download = size(r"Need to get ([\d.,]+) ([kMG]?B)(?:/[\d.,]+ [kMG]?B)? of archives")
    installed = size(r"After this operation, ([\d.,]+) ([kMG]?B) of additional disk space will be used")
    return download, installed


def parse_apt_simulation(text: str) -> list[str]:
    """Package names on the 'Inst' lines of ``apt-get -s install``."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("Inst ")]


def parse_rpm_whatprovides(text: str, names: list[str], state: dict[str, str | None]) -> dict[str, str | None]:
    """``rpm -q --whatprovides`` prints one line per name asked, in order ('no package provides X' when none)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == len(names):
        for name, line in zip(names, lines):
            if "\t" in line:
                state[name] = line.split("\t", 1)[1].strip()
        return state
    # A name provided by several packages prints several lines: match by name where we can.
    for line in lines:
        if "\t" in line:
            pkg, version = line.split("\t", 1)
            if pkg in state:
                state[pkg] = version.strip()
    return state


def parse_versionlock_list(text: str) -> set[str]:
    """``dnf versionlock list``: 'name-epoch:version-release.*' lines -> names."""
    found = set()
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"^(?:!)?(.+?)-(?:\d+:)?[^-]+-[^-]+$", line)
        if match:
            found.add(match.group(1))
    return found


def backend_for(
    pkg_mgr: str,
    distro: dict[str, t.Any],
    root: Sysroot,
    runner: Runner,
    lock_timeout: int = 300,
    install_recommends: bool = False,
    module: str = "this module",
) -> PackageManager:
    """The backend for a module's ``pkg_mgr`` option on this host (``auto``: the distribution's, see ``_distro.pkg_mgr_for``).

    Raises ModuleError naming the host and the fix when neither apt nor dnf serves it; runs no command."""
    chosen = pkg_mgr if pkg_mgr and pkg_mgr != "auto" else _distro.pkg_mgr_for(distro, root)
    if chosen not in ("apt", "dnf"):
        raise ModuleError(
            f"No supported package manager on {distro.get('name') or distro.get('id') or 'this host'} (found {chosen or 'none'}): "
            f"{module} supports apt and dnf; set pkg_mgr if detection is wrong. Nothing was changed.",
            pkg_mgr=chosen,
        )
    return backend(chosen, runner, lock_timeout, install_recommends)


def backend(pkg_mgr: str, runner: Runner, lock_timeout: int = 300, install_recommends: bool = False) -> PackageManager:
    if pkg_mgr == "apt":
        return Apt(runner, lock_timeout, install_recommends)
    if pkg_mgr == "dnf":
        return Dnf(runner, lock_timeout)
    raise PackageError(f"Package manager {pkg_mgr!r} is not supported: use apt or dnf.")
