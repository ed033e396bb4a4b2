# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The container_toolkit module's logic: NVIDIA's container toolkit, the runtimes configured for it, the CDI spec.

PRIVATE to the collection: no compatibility promise outside it.

``ContainerToolkit.plan()`` checks every option, reads the host (the toolkit's packages and holds, the installed
engines' versions, their configuration files, the driver and the CDI spec's record) and returns the run as steps;
``apply(plan)`` does exactly those; check mode is the plan.

* Packages: ``nvidia-container-toolkit`` and its three companions from NVIDIA's CUDA repository (which carries the
  toolkit since 1.13; the repository files and key handling of ``_nvidia_repo``, shared with nvidia_driver and
  cuda_toolkit), at ``version`` exactly when given, held.
* Docker: ``/etc/docker/daemon.json`` is parsed and merged: ``runtimes.nvidia`` added (and ``features.cdi`` on Docker 25
  and later); every other key of the administrator is kept. Validated with ``dockerd --validate`` (Docker 23 and later)
  before it replaces the file; docker is restarted only when the file changed and the service is active.
* containerd: a drop-in ``/etc/containerd/conf.d/99-mlhost-nvidia.toml`` in the config version the installed containerd
  reads (1.x: version 2, ``io.containerd.grpc.v1.cri``; 2.x: version 3, ``io.containerd.cri.v1.runtime``), imported by
  the main config. The main config is ours when we created it (absent before) or when it is the distribution
  package's conffile unchanged (Debian ships one without ``imports``): then it is replaced by a marked file that keeps
  the package's settings and adds the import. An administrator's main config without the import is refused with the
  line to add. ``containerd config dump`` validates the result before containerd is restarted; a failure puts the
  previous files back.
* Podman reads CDI specs only.
* CDI: ``nvidia-ctk cdi generate`` where the driver is loaded (``nvidia-smi -L`` answers), recorded in a file of ours
  beside the spec (driver version, the GPUs and MIG devices listed, the MIG layout config's hash, the toolkit's
  version) and regenerated when that changes. Where the toolkit ships NVIDIA's ``nvidia-cdi-refresh`` units, a
  drop-in points them at the same spec and they are enabled (they regenerate it at boot and on driver changes).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _distro, _files, _nvidia_driver, _nvidia_repo, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._mig import CONFIG_PATH as MIG_CONFIG
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_repo import FileChange
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PackageError, backend_for

NOTHING = "Nothing was changed."
TOOLKIT = "nvidia-container-toolkit"
# The toolkit and the packages it depends on at the same version (NVIDIA releases the four together).
PACKAGES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools", "libnvidia-container1")
RUNTIMES = ("docker", "containerd", "podman")
PROGRAM_DIRS = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]

DAEMON_JSON = "/etc/docker/daemon.json"
RUNTIME_PATH = "nvidia-container-runtime"
RUNTIME_BINARY = "/usr/bin/nvidia-container-runtime"
DOCKER_RUNTIME = {"path": RUNTIME_PATH, "args": []}
DOCKER_CDI_FROM = (25, 0)
DOCKER_VALIDATE_FROM = (23, 0)
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_DROPIN_DIR = "/etc/containerd/conf.d"
CONTAINERD_DROPIN = "/etc/containerd/conf.d/99-mlhost-nvidia.toml"
CONTAINERD_IMPORT = "/etc/containerd/conf.d/*.toml"
# The CRI plugin that holds the runtimes, per config version (containerd's docs/cri/config.md; 2.x: config version 3
# splits the CRI plugin, runtimes under io.containerd.cri.v1.runtime).
CRI_PLUGIN = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
CONTAINERD_CDI_FROM = (1, 7)
PODMAN_CDI_FROM = (4, 1)

CDI_SPEC = "/etc/cdi/nvidia.yaml"
CDI_DIRS = ("/etc/cdi", "/var/run/cdi", "/run/cdi")
STATE_SUFFIX = ".mlhost-state"  # not .json/.yaml: CDI reads every *.json and *.yaml of its directories
REFRESH_UNITS = ("nvidia-cdi-refresh.path", "nvidia-cdi-refresh.service")
REFRESH_DROPIN = "/etc/systemd/system/nvidia-cdi-refresh.service.d/zz-mlhost.conf"
UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")

# 1.18.0-1 (apt), 1.18.0-1 or 0:1.18.0-1 (dnf); a pre-release such as 1.18.0~rc.1-1.
VERSION = re.compile(r"(?:[0-9]+:)?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?:~[0-9A-Za-z.]{1,20})?-[0-9A-Za-z.~+]{1,20}")
SPEC_NAME = re.compile(r"/[A-Za-z0-9._/-]{1,250}\.(?:yaml|json)")


def _problem(text: str) -> ModuleError:
    return ModuleError(f"{text} {NOTHING}")


# Options -----------------------------------------------------------------------


def check_options(params: dict[str, t.Any]) -> None:
    """Every option as given (no host read): shapes, combinations, no control characters."""
    _nvidia_repo.check_plain_text(params, ("version", "cdi_spec"))
    runtimes = params.get("runtimes") or []
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise _problem(f"runtimes: {', '.join(repr(b) for b in bad)} is not a runtime the collection configures; give a "
                       f"list of {', '.join(RUNTIMES)}.")
    if len(set(runtimes)) != len(runtimes):
        raise _problem("runtimes names a runtime twice; list each once.")
    version = params.get("version") or ""
    if version and not VERSION.fullmatch(version):
        raise _problem(f"version {version!r} is not a package version of the toolkit: give it as the repository lists it, "
                       "with its revision, for example 1.18.0-1 (apt-cache policy nvidia-container-toolkit shows them).")
    if version and params.get("state") == "absent":
        raise _problem("version is for state present; state absent removes whichever version is installed.")
    spec = params.get("cdi_spec") or ""
    if not SPEC_NAME.fullmatch(spec) or "/../" in spec or "/./" in spec or "//" in spec:
        raise _problem(f"cdi_spec {spec!r} must be an absolute path of letters, digits and ._- ending in .yaml or .json, "
                       f"such as {CDI_SPEC}.")
    if "podman" in runtimes and not params.get("cdi"):
        raise _problem("Podman reaches NVIDIA GPUs through CDI only: with podman in runtimes, cdi must be true.")
    _nvidia_repo.check_repo_options(params)
    _nvidia_repo.check_package_options(params)


# Versions ----------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"[0-9]+", text)[:3])


def parse_containerd_version(text: str) -> str | None:
    """'1.7.24' from ``containerd --version`` (Debian: 'containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6';
    upstream 2.x: 'containerd github.com/containerd/containerd/v2 v2.1.4 <commit>')."""
    match = re.search(r"^containerd\s+\S+\s+v?([0-9]+\.[0-9]+\.[0-9]+)", text or "", re.M)
    return match.group(1) if match else None


def parse_docker_version(text: str) -> str | None:
    """'26.1.5' from ``dockerd --version`` ('Docker version 26.1.5+dfsg1, build 411e817')."""
    match = re.search(r"Docker version v?([0-9]+\.[0-9]+\.[0-9]+)", text or "")
    return match.group(1) if match else None


def parse_podman_version(text: str) -> str | None:
    match = re.search(r"podman version v?([0-9]+\.[0-9]+\.[0-9]+)", text or "")
    return match.group(1) if match else None


def config_version_for(containerd: str) -> int:
    """The config version a containerd release reads for its drop-ins: 1.x 2, 2.x 3."""
    major = version_tuple(containerd)[0]
    if major >= 2:
        return 3
    if version_tuple(containerd) < (1, 5):
        raise _problem(f"containerd {containerd} is too old for a drop-in configuration (imports and config version 2 "
                       "need 1.5 or later here): upgrade containerd, or remove containerd from runtimes.")
    return 2


def same_version(installed: str | None, wanted: str) -> bool:
    if installed is None:
        return False
    strip = re.compile(r"^0:")
    return strip.sub("", installed) == strip.sub("", wanted)


# Docker ------------------------------------------------------------------------


def merge_daemon_json(text: str | None, cdi: bool, docker_version: str | None, state: str = "present") -> tuple[str | None, list[str]]:
    """(the daemon.json to write, or None when it stays as it is; warnings). Refuses a file it cannot merge safely."""
    current: dict[str, t.Any] = {}
    if text is not None and text.strip():
        try:
            current = json.loads(text, object_pairs_hook=_no_duplicates)
        except ValueError as exc:
            raise _problem(f"{DAEMON_JSON} is not valid JSON ({exc}); Docker reads JSON only (no comments, no trailing "
                           f"commas). Fix the file (dockerd --validate --config-file {DAEMON_JSON} says where), then rerun.") from exc
        if not isinstance(current, dict):
            raise _problem(f"{DAEMON_JSON} holds a JSON {type(current).__name__}, not an object: Docker needs an object "
                           "({...}). Fix the file, then rerun.")
    merged = json.loads(json.dumps(current))
    warnings: list[str] = []
    runtimes = merged.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise _problem(f"{DAEMON_JSON}: runtimes is a {type(runtimes).__name__}, not an object. Fix the file, then rerun.")
    existing = runtimes.get("nvidia")
    if existing is not None and not _ours(existing):
        raise _problem(f"{DAEMON_JSON} has a runtimes.nvidia entry the collection did not write ({json.dumps(existing)}); "
                       f"it writes {json.dumps(DOCKER_RUNTIME)}. Remove that entry (or make it this one), then rerun; or "
                       "leave docker out of runtimes.")
    if state == "absent":
        if existing is None:
            return None, warnings
        del runtimes["nvidia"]
        if not runtimes:
            merged.pop("runtimes", None)
        return render_json(merged), warnings
    if existing is None:
        runtimes["nvidia"] = dict(DOCKER_RUNTIME)
        merged["runtimes"] = runtimes
    if cdi and docker_version and version_tuple(docker_version) >= DOCKER_CDI_FROM:
        features = merged.get("features", {})
        if not isinstance(features, dict):
            raise _problem(f"{DAEMON_JSON}: features is a {type(features).__name__}, not an object. Fix the file, then rerun.")
        if features.get("cdi") is False:
            raise _problem(f"{DAEMON_JSON} sets features.cdi to false, and cdi is true: remove that setting (or set cdi: "
                           "false, and use --runtime=nvidia instead of --device nvidia.com/gpu=all), then rerun.")
        if features.get("cdi") is not True:
            features["cdi"] = True
            merged["features"] = features
    elif cdi:
        warnings.append(f"Docker {docker_version or '(version unknown)'} has no CDI support (Docker 25 and later): containers "
                        "get the GPUs with --runtime=nvidia --gpus all (or -e NVIDIA_VISIBLE_DEVICES), not --device "
                        "nvidia.com/gpu=all.")
    if merged == current and text is not None and text.strip():
        return None, warnings
    return render_json(merged), warnings


def _no_duplicates(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _ours(entry: t.Any) -> bool:
    """runtimes.nvidia as the collection (or nvidia-ctk runtime configure) writes it."""
    return (isinstance(entry, dict) and entry.get("path") in (RUNTIME_PATH, RUNTIME_BINARY)
            and entry.get("args", []) == [] and set(entry) <= {"path", "args"})


def render_json(data: dict[str, t.Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


# containerd --------------------------------------------------------------------


def cri_containerd_section(dump: str, plugin: str) -> list[str]:
    """The tables ``[plugins."<plugin>".containerd...]`` of a ``containerd config dump`` (either quote style), as lines,
    without the nvidia runtime's tables.

    containerd merges an imported file one level below the plugin: a drop-in that names the plugin's ``containerd``
    table replaces the whole of it (snapshotter, default runtime, runc and its SystemdCgroup; seen with Debian 13's
    containerd 1.7.24), so the drop-in carries that table as containerd has it now, plus the nvidia runtime."""
    section = re.compile(r"""^\[plugins\.(["'])""" + re.escape(plugin) + r"""\1\.containerd(?:\]|\.)""")
    nvidia = re.compile(r"""\.containerd\.runtimes\.(?:nvidia|["']nvidia["'])(?:\]|\.)""")
    out: list[str] = []
    inside = False
    for raw in dump.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = bool(section.match(line)) and not nvidia.search(line)
            if inside:
                out.append(line)
        elif inside and line and not line.startswith("#"):
            out.append("  " + line)
    return out


def runc_systemd_cgroup(lines: list[str]) -> bool:
    """Whether runc's options in the section say SystemdCgroup = true (the nvidia runtime must match kubelet's driver)."""
    inside = False
    for line in lines:
        if line.startswith("["):
            inside = bool(re.search(r"""\.runtimes\.(?:runc|["']runc["'])\.options\]$""", line))
        elif inside and re.fullmatch(r"\s*SystemdCgroup\s*=\s*true\s*", line):
            return True
    return False


def containerd_dropin(config_version: int, cdi: bool, containerd: str, section: list[str] | None = None) -> str:
    """The drop-in for a containerd of ``config_version``: the CRI plugin's ``containerd`` table as containerd has it now
    (``section``, from ``containerd config dump``), with the nvidia runtime (runc v2 shim, NVIDIA's runtime binary)."""
    plugin = CRI_PLUGIN[config_version]
    section = section or []
    lines = [
        f"{_ownership.TEXT_MARKER} (container_toolkit): the NVIDIA runtime for containerd {containerd}, config version",
        f"# {config_version}, imported by {CONTAINERD_CONFIG}. containerd replaces the whole [plugins.\"{plugin}\".containerd]",
        "# table with an imported one, so it is carried here as containerd had it. Change the module's options, not this file;",
        "# settings of your own for that table go into the main config before the collection's first run.",
        f"version = {config_version}",
        "",
    ]
    if cdi and version_tuple(containerd) >= CONTAINERD_CDI_FROM:
        lines += [f'[plugins."{plugin}"]', "  enable_cdi = true", '  cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]', ""]
    if section:
        lines += section + [""]
    lines += [
        f'[plugins."{plugin}".containerd.runtimes.nvidia]',
        '  runtime_type = "io.containerd.runc.v2"',
        f'[plugins."{plugin}".containerd.runtimes.nvidia.options]',
        f'  BinaryName = "{RUNTIME_BINARY}"',
    ]
    if runc_systemd_cgroup(section):
        lines.append("  SystemdCgroup = true")
    return "\n".join(lines) + "\n"


_TOP_VERSION = re.compile(r"^version\s*=\s*([0-9]+)\s*(?:#.*)?$", re.M)
_IMPORTS = re.compile(r"^imports\s*=\s*\[(.*?)\]", re.M | re.S)


def toml_top(text: str) -> str:
    """The part of a TOML file before its first table header (where version and imports live)."""
    match = re.search(r"^\s*\[", text, re.M)
    return text[:match.start()] if match else text


def config_imports(text: str) -> list[str]:
    match = _IMPORTS.search(toml_top(text))
    return re.findall(r"""["']([^"']*)["']""", match.group(1)) if match else []


def imports_dropin(text: str) -> bool:
    return any(fnmatch.fnmatch(CONTAINERD_DROPIN, pattern) for pattern in config_imports(text))


def config_version_of(text: str) -> int | None:
    match = _TOP_VERSION.search(toml_top(text))
    return int(match.group(1)) if match else None


PACKAGE_NOTE = "# Below the imports line: the containerd package's own"


def main_config(config_version: int, package_text: str | None = None, package_md5: str | None = None) -> str:
    """Our main config: the version and the imports line; or the imports line above the package's own file, verbatim
    (TOML takes top-level keys in any order before the first table), so that removing ours gives the package's back."""
    head = [f"{_ownership.TEXT_MARKER} (container_toolkit): containerd's main config, with the imports line that loads",
            f"# {CONTAINERD_IMPORT}. Put settings of your own in a file there, not here."]
    if package_text is None:
        return "\n".join(head + [f"version = {config_version}", f'imports = ["{CONTAINERD_IMPORT}"]']) + "\n"
    head.append(f"{PACKAGE_NOTE} {CONTAINERD_CONFIG} (md5 {package_md5}), as it shipped.")
    return "\n".join(head + [f'imports = ["{CONTAINERD_IMPORT}"]']) + "\n" + package_text


def package_part(ours: str) -> str | None:
    """The package's file kept in our main config (None when ours was made from nothing)."""
    if PACKAGE_NOTE not in ours:
        return None
    marker = f'imports = ["{CONTAINERD_IMPORT}"]\n'
    at = ours.find(marker)
    return ours[at + len(marker):] if at >= 0 else None


def parse_conffiles(text: str) -> dict[str, str]:
    """path -> md5 from ``dpkg-query -W -f '${Conffiles}'`` (' /etc/containerd/config.toml 5f2... ' lines)."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("/"):
            out[parts[0]] = parts[1]
    return out


# CDI ----------------------------------------------------------------------------


def state_path(spec: str) -> str:
    return spec + STATE_SUFFIX


def render_state(record: dict[str, t.Any]) -> str:
    return (f"{_ownership.TEXT_MARKER} (container_toolkit): what {record.get('spec')} was generated for; it is\n"
            "# generated again when this changes.\n" + json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_state(text: str | None) -> dict[str, t.Any] | None:
    if not text or not text.startswith(_ownership.TEXT_MARKER):
        return None
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def refresh_dropin(spec: str) -> str:
    return (f"{_ownership.TEXT_MARKER} (container_toolkit): NVIDIA's CDI refresh writes the one spec the\n"
            "# collection manages (CDI drops devices two specs both claim). Change cdi_spec, not this file.\n"
            "[Service]\n"
            f"Environment=NVIDIA_CTK_CDI_OUTPUT_FILE_PATH={spec}\n")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The worker -----------------------------------------------------------------------


class ContainerToolkit(Worker):
    """plan(): the whole run as steps; apply(plan): those steps, in order."""

    def __init__(self, host: t.Any) -> None:
        super().__init__(host)
        self.root = host.sysroot
        self.files = _nvidia_repo.FileSet(self.root.root)
        self.warnings: list[str] = []
        self.steps: list[dict[str, t.Any]] = []
        self.fingerprints: list[str] = []

    def _fetch(self, url: str) -> bytes:
        return self.host.fetch(url).read()

    def _path(self, path: str) -> str:
        return self.root.path(path.lstrip("/"))

    def _read(self, path: str) -> str | None:
        data = _files.read_bytes(self._path(path))
        return None if data is None else data.decode("utf-8", "replace")

    def _change(self, path: str, after: str | None, mode: int = 0o644) -> FileChange | None:
        before = _files.read_bytes(self._path(path))
        wanted = None if after is None else after.encode("utf-8")
        return None if before == wanted else FileChange(path, before, wanted, mode)

    def _step(self, do: str, action: str, **data: t.Any) -> None:
        self.steps.append({"do": do, "action": action, **data})

    # Planning ----------------------------------------------------------------------
    def plan(self) -> Plan:
        params = self.params
        check_options(params)
        distro = _distro.distro_facts(self.root)
        self.pm = backend_for(params["pkg_mgr"], distro, self.root, self.runner, params["lock_timeout"], False, "container_toolkit")
        present = params["state"] == "present"
        result: dict[str, t.Any] = {"pkg_mgr": self.pm.name, "cdi_spec": params["cdi_spec"], "engines": {}}
        try:
            installed = self.pm.installed_matching(list(PACKAGES), holds=True)
            engines = {name: self._engine(name) for name in params.get("runtimes") or []}
            result["engines"] = {n: {"version": e["version"], "installed": e["program"] is not None} for n, e in engines.items()}
            if present:
                self._plan_packages(distro, installed)
            for name, engine in engines.items():
                getattr(self, f"_plan_{name}")(engine, present)
            cdi = self._plan_cdi(installed, present)
            if not present:
                self._plan_remove(installed)
        except PackageError as exc:
            raise _nvidia_driver.package_failure(exc) from exc
        version = installed.get(TOOLKIT, (None, False))[0]
        result.update(repo_key_fingerprints=self.fingerprints, installed_version=version, version=params.get("version") or version, cdi=cdi,
                      held=sorted(n for n, (dummy, held) in installed.items() if held),
                      actions=[s["action"] for s in self.steps])
        diff = [c.diff() for s in self.steps for c in s.get("changes", [])]
        return Plan(bool(self.steps), result, diff=diff or None, steps=self.steps, warnings=self.warnings)

    def _engine(self, name: str) -> dict[str, t.Any]:
        program = {"docker": "dockerd", "containerd": "containerd", "podman": "podman"}[name]
        path = self.runner.find(program, PROGRAM_DIRS)
        engine: dict[str, t.Any] = {"name": name, "program": path, "version": None}
        if path is None:
            if self.params["require_engines"]:
                hint = " (the ml_host role installs Debian's docker.io with mlhost_docker: true)" if name == "docker" else ""
                raise _problem(f"runtimes lists {name}, but {program} is not installed on this host: install {name} first"
                               f"{hint}, or remove {name} from runtimes.")
            self.warnings.append(f"{name} is not installed yet: its configuration is planned once it is (require_engines "
                                 "is false).")
            return engine
        done = self.runner.run([path, "--version"], check=False)
        text = (done.out + done.err) if done else ""
        parse = {"docker": parse_docker_version, "containerd": parse_containerd_version, "podman": parse_podman_version}[name]
        engine["version"] = parse(text)
        if engine["version"] is None:
            raise _problem(f"Could not read {name}'s version from '{program} --version' ({text.strip()[:200]!r}); the "
                           f"configuration depends on it. Check the {name} installation.")
        return engine

    def _plan_packages(self, distro: dict[str, t.Any], installed: dict[str, tuple[str, bool]]) -> None:
        params = self.params
        pm = self.pm
        if params["source"] == "nvidia_repo":
            files, fingerprints = _nvidia_repo.source_files(params, distro, "nvidia_repo", pm.name, self.root, self._fetch,
                                                            "source: nvidia_repo was set")
            self.fingerprints = fingerprints
            changes = self.files.plan(files)
            if changes:
                self._step("files", "write the package sources: " + ", ".join(c.action for c in changes), changes=changes)
        else:
            changes = []
        version = params.get("version") or ""
        if version:
            names = [n for n in PACKAGES if not same_version(installed.get(n, (None, False))[0], version)]
            specs = [f"{n}={version}" if pm.name == "apt" else f"{n}-{version}" for n in names]
        else:
            names = [TOOLKIT] if TOOLKIT not in installed or PACKAGES[1] not in installed else []
            specs = list(names)
        if names:
            if params["source"] == "preinstalled":
                raise _problem(f"source is preinstalled, but {', '.join(names)} is not installed"
                               + (f" at {version}" if version else "") + ": install the toolkit first, or set source: nvidia_repo.")
            refresh = bool(params["update_cache"] or changes)
            if refresh:
                self._step("refresh", f"refresh the package lists when older than {params['cache_valid_time']} s"
                           if not changes else "refresh the package lists", force=bool(changes))
            if not changes and pm.cache_age() is not None:
                self._check_source([TOOLKIT])
            held = [n for n in names if installed.get(n, (None, False))[1]]
            if held:
                self._step("unhold", f"unhold {' '.join(held)} (version change)", names=held)
            self._step("install", f"install {' '.join(specs)}", names=specs)
        if params["hold"]:
            after = set(installed) | set(PACKAGES if names else ())
            unheld = [n for n in PACKAGES if n in after and (n in names or not installed.get(n, (None, False))[1])]
            if unheld:
                self._step("hold", f"hold {' '.join(unheld)}", names=unheld)

    def _check_source(self, names: list[str]) -> None:
        candidates = self.pm.candidates(names)
        absent = [n for n in names if not candidates.get(n)]
        if absent:
            raise _problem(f"The package sources have no {', '.join(absent)}: check repo_url (NVIDIA's CUDA repository, or a "
                           "mirror of it, carries the container toolkit since 1.13), then rerun.")

    # Docker --------------------------------------------------------------------
    def _plan_docker(self, engine: dict[str, t.Any], present: bool) -> None:
        if engine["program"] is None:
            return
        text = self._read(DAEMON_JSON)
        if os.path.islink(self._path(DAEMON_JSON)):
            raise _problem(f"{DAEMON_JSON} is a symbolic link: the collection does not write through it. Make it a file.")
        wanted, warnings = merge_daemon_json(text, bool(self.params["cdi"]), engine["version"], "present" if present else "absent")
        self.warnings += warnings
        if wanted is None:
            return
        change = FileChange(DAEMON_JSON, None if text is None else text.encode("utf-8"), wanted.encode("utf-8"))
        validate = engine["version"] is not None and version_tuple(engine["version"]) >= DOCKER_VALIDATE_FROM
        self._step("docker", f"{'merge the nvidia runtime into' if present else 'remove the nvidia runtime from'} "
                   f"{DAEMON_JSON}" + (", validated by dockerd --validate" if validate else "") + ", restart docker if active",
                   changes=[change], program=engine["program"], validate=validate)

    # containerd ------------------------------------------------------------------
    def _plan_containerd(self, engine: dict[str, t.Any], present: bool) -> None:
        if engine["program"] is None:
            return
        version = engine["version"]
        config_version = config_version_for(version)
        main = self._read(CONTAINERD_CONFIG)
        main_real = self._path(CONTAINERD_CONFIG)
        ours = main is not None and _ownership.text_is_owned(main_real)
        changes: list[FileChange | None] = []
        if not _ownership.text_is_owned(self._path(CONTAINERD_DROPIN)):
            raise _problem(f"{CONTAINERD_DROPIN} exists and was not written by the collection; move it away (or rename it), "
                           "then rerun.")
        if not present:
            changes.append(self._change(CONTAINERD_DROPIN, None))
            if ours and main is not None:
                changes.append(self._change(CONTAINERD_CONFIG, package_part(main)))
            self._containerd_step([c for c in changes if c], engine, "remove the nvidia runtime drop-in")
            return
        if main is None:
            changes.append(self._change(CONTAINERD_CONFIG, main_config(config_version)))
        elif not ours:
            if not imports_dropin(main):
                package_md5 = self._package_conffile_md5()
                if package_md5 and package_md5 == hashlib.md5(main.encode("utf-8")).hexdigest():  # nosec - dpkg's own conffile sum
                    changes.append(self._change(CONTAINERD_CONFIG, main_config(config_version, main, package_md5)))
                else:
                    raise _problem(f"{CONTAINERD_CONFIG} is the administrator's and does not import {CONTAINERD_DROPIN_DIR}, "
                                   "so the NVIDIA runtime's drop-in would not be read. Add this line at its top, before any "
                                   f"[table] (after its version line): imports = [\"{CONTAINERD_IMPORT}\"], then rerun. "
                                   "The collection does not edit that file.")
            found = config_version_of(main)
            if found is not None and found != config_version:
                self.warnings.append(f"{CONTAINERD_CONFIG} is config version {found}; containerd {version} reads the drop-in "
                                     f"as version {config_version}.")
        elif package_part(main) is None and config_version_of(main) != config_version:
            # Ours, made from nothing, for another containerd (an upgrade from 1.x to 2.x): the version follows.
            changes.append(self._change(CONTAINERD_CONFIG, main_config(config_version)))
        section = cri_containerd_section(self._dump(engine["program"], main is not None), CRI_PLUGIN[config_version])
        changes.append(self._change(CONTAINERD_DROPIN, containerd_dropin(config_version, bool(self.params["cdi"]), version,
                                                                         section)))
        if self.params["cdi"] and version_tuple(version) < CONTAINERD_CDI_FROM:
            self.warnings.append(f"containerd {version} has no CDI support (1.7 and later): its pods get the GPUs through the "
                                 "nvidia runtime (runtimeClassName: nvidia).")
        self._containerd_step([c for c in changes if c], engine, f"write {CONTAINERD_DROPIN} (config version {config_version})")

    def _containerd_step(self, changes: list[FileChange], engine: dict[str, t.Any], what: str) -> None:
        if changes:
            self._step("containerd", f"{what}: " + ", ".join(c.action for c in changes) + ", validated by containerd config "
                       "dump, restart containerd if active", changes=changes, program=engine["program"])

    def _dump(self, program: str, with_config: bool) -> str:
        """``containerd config dump`` of the configuration as it is now (the main config and what it imports)."""
        argv = [program] + (["--config", self._path(CONTAINERD_CONFIG)] if with_config else []) + ["config", "dump"]
        done = self.runner.run(argv, check=False)
        if done is None or done.rc != 0:
            raise _problem(f"containerd cannot load its configuration as it is now ({' '.join(argv[1:])}: "
                           f"{((done.err or done.out) if done else 'no answer').strip()[-300:]}). Fix it first, then rerun.")
        return done.out

    def _package_conffile_md5(self) -> str | None:
        if self.pm.name != "apt":
            return None
        done = self.runner.run(["dpkg-query", "-W", "-f", "${Conffiles}\\n", "containerd"], check=False)
        return parse_conffiles(done.out).get(CONTAINERD_CONFIG) if done and done.rc == 0 else None

    # Podman ------------------------------------------------------------------------
    def _plan_podman(self, engine: dict[str, t.Any], present: bool) -> None:
        if engine["version"] and version_tuple(engine["version"]) < PODMAN_CDI_FROM and present:
            raise _problem(f"Podman {engine['version']} cannot use CDI devices (4.1 and later can): upgrade Podman, or remove "
                           "podman from runtimes.")

    # CDI -------------------------------------------------------------------------
    def _plan_cdi(self, installed: dict[str, tuple[str, bool]], present: bool) -> dict[str, t.Any]:
        params = self.params
        spec = params["cdi_spec"]
        record_path = state_path(spec)
        record = read_state(self._read(record_path))
        spec_exists = os.path.lexists(self._path(spec))
        if spec_exists and record is None:
            raise _problem(f"The CDI spec {spec} exists and the collection did not generate it (there is no {record_path}). "
                           "Remove it (the module generates it again with nvidia-ctk), or set cdi_spec to another path.")
        if record is not None and not _ownership.text_is_owned(self._path(record_path)):
            raise _problem(f"{record_path} was not written by the collection. Move it away, then rerun.")
        if not present or not params["cdi"]:
            changes = [c for c in (self._change(spec, None), self._change(record_path, None),
                                   self._change(REFRESH_DROPIN, None)) if c]
            if changes:
                self._step("cdi_remove", ", ".join(c.action for c in changes), changes=changes)
            return {"state": "absent" if not present else "disabled", "spec": spec, "generated_for": None}
        if os.path.dirname(spec) not in CDI_DIRS:
            self.warnings.append(f"cdi_spec {spec} is outside the directories container runtimes read CDI specs from "
                                 f"({', '.join(CDI_DIRS[:2])}): point them at it (Docker: cdi-spec-dirs).")
        self._warn_other_specs(spec)
        self._plan_refresh_units(spec)
        driver = self._driver()
        if driver is None:
            return {"state": "skipped", "spec": spec, "generated_for": record}
        packages_change = any(s["do"] in ("install",) for s in self.steps)
        wanted = {"spec": spec, "driver": driver["version"], "gpus_sha256": driver["gpus_sha256"],
                  "mig_config_sha256": self._mig_hash(), "toolkit": installed.get(TOOLKIT, (None, False))[0]}
        if spec_exists and record == wanted and not packages_change:
            return {"state": "current", "spec": spec, "generated_for": record}
        why = ("the spec is missing" if not spec_exists else "the toolkit changes" if packages_change else
               "what it was generated for changed: " + ", ".join(k for k in wanted if (record or {}).get(k) != wanted[k]))
        self._step("cdi", f"generate the CDI spec {spec} with nvidia-ctk ({why})", record=wanted, spec=spec,
                   changes=[c for c in (self._change(record_path, render_state(wanted)),) if c])
        return {"state": "generated", "spec": spec, "generated_for": wanted}

    def _driver(self) -> dict[str, t.Any] | None:
        smi = self.runner.find("nvidia-smi", PROGRAM_DIRS)
        listed = self.runner.run([smi, "-L"], check=False) if smi else None
        version = self.runner.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], check=False) \
            if listed is not None and listed.rc == 0 else None
        if listed is None or listed.rc != 0 or version is None or version.rc != 0 or not version.out.strip():
            why = "nvidia-smi is not installed" if smi is None else \
                f"nvidia-smi -L: {((listed.err or listed.out) if listed else '').strip()[:200] or 'no answer'}"
            self.warnings.append(f"The NVIDIA driver is not loaded here ({why}): the CDI spec {self.params['cdi_spec']} is not "
                                 "generated now. It is generated by the next run once the driver is loaded (after the "
                                 "reboot), or at boot by nvidia-cdi-refresh where the toolkit ships it.")
            return None
        listing = "\n".join(line.strip() for line in listed.out.splitlines() if line.strip())
        return {"version": version.out.strip().splitlines()[0].strip(), "gpus_sha256": sha256_text(listing)}

    def _mig_hash(self) -> str | None:
        data = _files.read_bytes(self._path(MIG_CONFIG))
        return _files.sha256_bytes(data) if data is not None else None

    def _warn_other_specs(self, spec: str) -> None:
        for directory in CDI_DIRS:
            for name in ("nvidia.yaml", "nvidia.json"):
                other = f"{directory}/{name}"
                if other != spec and os.path.realpath(self._path(other)) != os.path.realpath(self._path(spec)) \
                        and os.path.isfile(self._path(other)):
                    self.warnings.append(f"Another NVIDIA CDI spec is at {other}: CDI drops the devices two specs both claim, "
                                         f"so nvidia.com/gpu=all may not resolve. Remove it; the collection keeps {spec}.")

    def _plan_refresh_units(self, spec: str) -> None:
        """NVIDIA's refresh units (toolkit 1.18 and later) write our spec: the drop-in goes first, before the install (the
        package's postinst starts them); they are enabled after it, where the installed toolkit ships them."""
        installing = any(s["do"] == "install" for s in self.steps)
        units = self._refresh_units()
        if not units and not installing:
            return
        dropin = self._change(REFRESH_DROPIN, refresh_dropin(spec))
        if dropin:
            self.steps.insert(0, {"do": "refresh_dropin", "action": f"{dropin.action} (nvidia-cdi-refresh writes {spec})",
                                  "changes": [dropin]})
        enable = self._units_to_enable(units) if units else []
        if enable or installing:
            self._step("refresh_units", "enable " + (" ".join(enable) if not installing else
                       "NVIDIA's nvidia-cdi-refresh units where the installed toolkit ships them"), enable=None if installing else enable)

    def _refresh_units(self) -> list[str]:
        return [u for u in REFRESH_UNITS if any(self.root.exists(d, u) for d in UNIT_DIRS)]

    def _units_to_enable(self, units: list[str]) -> list[str]:
        done = self.runner.run(["systemctl", "is-enabled"] + units, check=False)
        if done is None:
            return []
        states = [line.strip() for line in done.out.splitlines()]
        return [u for u, s in zip(units, states + [""] * len(units)) if s not in ("enabled", "static", "enabled-runtime", "alias")]

    def _plan_remove(self, installed: dict[str, tuple[str, bool]]) -> None:
        present = [n for n in PACKAGES if n in installed]
        held = [n for n in present if installed[n][1]]
        if held:
            self._step("unhold", f"unhold {' '.join(held)}", names=held)
        if present:
            self._step("remove", f"remove {' '.join(present)}", names=present)

    # Applying ----------------------------------------------------------------------
    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        try:
            for step in plan.steps:
                getattr(self, f"_do_{step['do']}")(step)
        except PackageError as exc:
            raise _nvidia_driver.package_failure(exc) from exc
        installed = self.pm.installed_matching(list(PACKAGES), holds=True)
        return {"installed_version": installed.get(TOOLKIT, (None, False))[0],
                "held": sorted(n for n, (dummy, held) in installed.items() if held)}

    def _do_files(self, step: dict[str, t.Any]) -> None:
        self.files.apply(step["changes"])

    def _do_refresh(self, step: dict[str, t.Any]) -> None:
        ran = self.pm.refresh(self.params["cache_valid_time"], force=step["force"])
        if ran or step["force"]:
            self._check_source([TOOLKIT])

    def _do_unhold(self, step: dict[str, t.Any]) -> None:
        self.pm.unhold(step["names"])

    def _do_install(self, step: dict[str, t.Any]) -> None:
        self.pm.install(step["names"])

    def _do_hold(self, step: dict[str, t.Any]) -> None:
        self.pm.hold(step["names"])

    def _do_remove(self, step: dict[str, t.Any]) -> None:
        self.pm.remove(step["names"])

    def _do_docker(self, step: dict[str, t.Any]) -> None:
        change = step["changes"][0]
        real = self._path(change.path)
        if step["validate"]:
            directory = os.path.dirname(real)
            os.makedirs(directory, mode=0o755, exist_ok=True)
            tmp = os.path.join(directory, ".daemon.json.mlhost-check")
            if os.path.lexists(tmp):
                os.unlink(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(change.after or b"")
                done = self.runner.run([step["program"], "--validate", "--config-file", tmp], check=False)
            finally:
                os.unlink(tmp)
            if done is None or done.rc != 0:
                raise ModuleError(f"dockerd --validate refused the merged {DAEMON_JSON}: "
                                  f"{((done.err or done.out) if done else 'no answer').strip()[-500:]}. {NOTHING}")
        self.files.apply([change])
        self._restart_if_active("docker")

    def _do_containerd(self, step: dict[str, t.Any]) -> None:
        changes = step["changes"]
        self.files.apply(changes)
        done = self.runner.run([step["program"], "--config", self._path(CONTAINERD_CONFIG), "config", "dump"], check=False)
        wants_runtime = any(c.path == CONTAINERD_DROPIN and c.after is not None for c in changes)
        if done is None or done.rc != 0 or (wants_runtime and not re.search(r"runtimes\.nvidia\]", done.out)):
            self.files.apply([FileChange(c.path, c.after, c.before, c.mode) for c in changes])
            detail = ((done.err or done.out) if done else "no answer").strip()[-500:]
            raise ModuleError(f"containerd config dump refused the configuration with the NVIDIA drop-in (or did not list "
                              f"runtimes.nvidia): {detail}. The previous files were put back; containerd was not restarted.")
        self._restart_if_active("containerd")

    def _do_refresh_dropin(self, step: dict[str, t.Any]) -> None:
        self.files.apply(step["changes"])
        self._daemon_reload()

    def _do_refresh_units(self, step: dict[str, t.Any]) -> None:
        enable = step["enable"]
        if enable is None:
            units = self._refresh_units()
            enable = self._units_to_enable(units) if units else []
        if enable:
            self._systemctl(["enable"] + enable)

    def _do_cdi(self, step: dict[str, t.Any]) -> None:
        ctk = self.runner.find("nvidia-ctk", PROGRAM_DIRS)
        if ctk is None:
            raise ModuleError("nvidia-ctk is not installed (the nvidia-container-toolkit-base package ships it), so the CDI spec "
                              "cannot be generated. Install the toolkit (state: present, source: nvidia_repo), then rerun.")
        record = dict(step["record"])
        record["toolkit"] = self.pm.installed([TOOLKIT]).get(TOOLKIT)
        spec = self._path(step["spec"])
        directory = os.path.dirname(spec)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        # A directory of its own beside the spec (CDI reads only the files directly in its directories): nvidia-ctk
        # writes there, and the spec is renamed into place, so a reader never sees half of it.
        work = os.path.join(directory, ".mlhost-cdi-new")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work, mode=0o700)
        try:
            out = os.path.join(work, os.path.basename(spec))
            fmt = "json" if spec.endswith(".json") else "yaml"
            self.runner.run([ctk, "cdi", "generate", f"--output={out}", f"--format={fmt}"])
            if not os.path.isfile(out):
                raise ModuleError(f"nvidia-ctk cdi generate wrote no spec at {out}. See its output above.")
            os.chmod(out, 0o644)
            os.replace(out, spec)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _files.atomic_write(self._path(state_path(step["spec"])), render_state(record), 0o644)

    def _do_cdi_remove(self, step: dict[str, t.Any]) -> None:
        self.files.apply(step["changes"])
        if any(c.path == REFRESH_DROPIN for c in step["changes"]):
            self._daemon_reload()

    def _daemon_reload(self) -> None:
        """systemd reads the drop-in; without a running systemd (an image being built) there is nothing to reload."""
        if self.root.live and os.path.isdir("/run/systemd/system"):
            self._systemctl(["daemon-reload"])

    def _restart_if_active(self, service: str) -> None:
        done = self.runner.run(["systemctl", "is-active", service], check=False)
        if done is not None and done.rc == 0 and done.out.strip() == "active":
            self._systemctl(["restart", service])

    def _systemctl(self, args: list[str]) -> None:
        done = self.runner.run(["systemctl"] + args, check=False)
        if done is None or done.rc != 0:
            raise ModuleError(f"systemctl {' '.join(args)} failed: {((done.err or done.out) if done else 'systemctl is missing').strip()[-500:]}.")
