# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The conda_env module's logic: compare conda-meta with the request, change only when it is unmet.

PRIVATE to the collection: no compatibility promise outside it.

Idempotence: what an environment holds is read from its ``conda-meta/*.json``
records (no conda process) and compared with the requested match specs
(``_conda_spec``: conda's version rules); with ``prune``, packages outside the
dependency closure of the request count as a change too. The ``pip:``
subsection is compared in the env's own Python with ``packaging``, as
python_env does. Only an unmet request starts an engine.

Engines and what a failure leaves:

- ``rattler`` (py-rattler in a tool venv, no conda base needed): solves with
  the current records as locked packages, links the full solution into a new
  directory beside the env with the env's own path patched into its files
  (``alternative_target_prefix``), checks the new records against the
  request, then swaps the two directories by rename. A failed solve, link or
  check removes the new directory: the old env is untouched. A failed pip
  step after the swap swaps back.
- ``mamba`` / ``conda`` (the CLI of the conda base): ``create``/``install``
  ``--json`` in place. conda solves before it touches the env, and unlinks
  and links as one transaction that it rolls back on error; afterwards the
  module reads conda-meta again and fails if the request is still unmet.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._conda_spec import MatchSpec, SpecError, dependency_name
from ansible_collections.mlinfra.mlhost.plugins.module_utils._environment_yml import EnvFileError, read_environment
from ansible_collections.mlinfra.mlhost.plugins.module_utils._miniforge import ANACONDA_HOSTS, MiniforgeError, validate_prefix
from ansible_collections.mlinfra.mlhost.plugins.module_utils._ownership import check_target
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

TOOL_RATTLER_VERSION = "0.28.0"
TOOL_PACKAGING_VERSION = _venv.TOOL_PACKAGING_VERSION
TOOL_VENV = "conda-venv"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")

# Runs in the tool venv with py-rattler: a JSON request on stdin, one JSON line out.
RATTLER_HELPER = r"""
import asyncio, json, os, sys
req = json.loads(sys.stdin.read())

def emit(obj, code=0):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    os._exit(code)  # py-rattler's runtime threads can abort a normal interpreter exit

try:
    from rattler import Gateway, MatchSpec, Platform, PrefixRecord, VirtualPackage, install, solve
except Exception as exc:
    emit({"error": "ImportError", "message": "%s: %s" % (type(exc).__name__, exc)}, 3)

def info(r):
    return {"name": r.name.normalized, "version": str(r.version), "build": str(r.build), "build_number": r.build_number,
            "channel": str(r.channel), "subdir": str(r.subdir), "url": str(r.url), "fn": r.file_name,
            "md5": r.md5.hex() if r.md5 else None}

async def main():
    installed = []
    meta = os.path.join(req["prefix"], "conda-meta")
    if os.path.isdir(meta):
        for name in sorted(os.listdir(meta)):
            if name.endswith(".json"):
                installed.append(PrefixRecord.from_path(os.path.join(meta, name)))
    gateway = Gateway(cache_dir=os.path.join(req["cache_dir"], "repodata"), show_progress=False)
    try:
        records = await solve(sources=req["channels"], specs=req["specs"], gateway=gateway,
                              platforms=[str(Platform.current()), "noarch"], locked_packages=installed,
                              virtual_packages=VirtualPackage.detect())
    except Exception as exc:
        emit({"error": type(exc).__name__, "message": str(exc)}, 2)
    if req["mode"] == "install":
        try:
            await install(records, target_prefix=req["target"], cache_dir=os.path.join(req["cache_dir"], "pkgs"),
                          installed_packages=[], show_progress=False, alternative_target_prefix=req["prefix"],
                          requested_specs=[MatchSpec(s)._match_spec for s in req["requested"]])
        except Exception as exc:
            emit({"error": type(exc).__name__, "message": str(exc)}, 2)
    emit({"records": sorted((info(r) for r in records), key=lambda d: d["name"])})

asyncio.run(main())
"""


class CondaEnvError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


# --- the request ------------------------------------------------------------------------

def env_prefix(params: dict[str, t.Any], file_data: dict[str, t.Any] | None) -> str:
    """The env's path: ``prefix``, or ``<conda>/envs/<name>`` (from the options, else from the file)."""
    name = params["name"] or (None if params["prefix"] else (file_data or {}).get("name"))
    prefix = params["prefix"] or (None if params["name"] else (file_data or {}).get("prefix"))
    if prefix:
        try:
            norm = validate_prefix(prefix)
        except MiniforgeError as exc:
            raise CondaEnvError(exc.msg.replace("prefix", "env prefix", 1).replace("an installer", "an environment")) from exc
        if params["conda"] and norm == os.path.normpath(params["conda"]):
            raise CondaEnvError(f"prefix {prefix!r} is the conda base itself: manage the base with mlinfra.mlhost.miniforge, "
                                "and give envs a prefix or name of their own.")
        return norm
    if not name:
        raise CondaEnvError("Give the environment a name or a prefix (or a file whose environment.yml has name:).")
    if not _NAME.match(name) or name in (".", "..") or name == "base":
        raise CondaEnvError(
            f"env name {name!r} is not a plain name: it may not hold a path, spaces or '..', nor be 'base'. "
            "Use a name such as 'train', or set prefix to an absolute path."
        )
    if not params["conda"]:
        raise CondaEnvError(f"env name {name!r} needs conda (the conda base whose envs/ holds it), or give prefix instead.")
    return os.path.join(os.path.normpath(params["conda"]), "envs", name)


def requested(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """{file, channels, specs (MatchSpec), spec_text, pip (str)} from file or specs, validated."""
    file_data = None
    if params["file"]:
        if not os.path.isabs(params["file"]):
            raise CondaEnvError(f"file {params['file']!r} must be an absolute path on the host.")
        try:
            file_data = read_environment(params["file"])
        except EnvFileError as exc:
            raise CondaEnvError(str(exc)) from exc
    texts = list(file_data["conda"]) if file_data else []
    texts += [s for s in params["specs"] if s not in texts]
    pip = list(file_data["pip"]) if file_data else []
    channels = list(file_data["channels"]) if file_data else []
    channels += [c for c in params["channels"] if c not in channels]
    if params["state"] == "present" and not texts:
        raise CondaEnvError("Nothing to install: give file (an environment.yml) or specs (match specs such as python=3.11).")
    specs = []
    for text in texts:
        try:
            specs.append(MatchSpec(text))
        except SpecError as exc:
            raise CondaEnvError(f"match spec {text!r} is not valid: {exc}") from exc
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CondaEnvError(f"{', '.join(dupes)} requested more than once: join the constraints into one spec (numpy >=1.26,<2).")
    for channel in channels:
        if channel == "defaults" or any(host in channel for host in ANACONDA_HOSTS):
            raise CondaEnvError(
                f"channel {channel!r} is Anaconda's 'defaults' repository, whose terms of service require a paid licence for "
                "many organisations. Use conda-forge (or a mirror of it)."
            )
        if "://" in channel and not re.match(r"^(https?|file)://\S+$", channel):
            raise CondaEnvError(f"channel {channel!r} is not an http(s):// or file:// URL, nor a channel name.")
    if pip and rq.have_packaging():
        rq.parse_lines(pip, (params["file"] or "specs") + " pip subsection")
    return {"file": file_data, "channels": channels, "specs": specs, "pip": pip}


def validate(params: dict[str, t.Any], check_mode: bool = False) -> tuple[str, dict[str, t.Any]]:
    """Refuse bad input before anything is read from or changed on the host; returns (prefix, request)."""
    if params["lock_file"] and not os.path.isabs(params["lock_file"]):
        raise CondaEnvError(f"lock_file {params['lock_file']!r} must be an absolute path.")
    if params["conda"] and not os.path.isabs(params["conda"]):
        raise CondaEnvError(f"conda {params['conda']!r} must be the absolute path of a conda base, such as /opt/miniforge3.")
    req = requested(params)
    prefix = env_prefix(params, req["file"])
    # In check mode the base may be one that an earlier task would have installed.
    if params["name"] and not check_mode and not os.path.isdir(os.path.normpath(params["conda"])):
        raise CondaEnvError(
            f"env name {params['name']!r} lives in {params['conda']}/envs, but {params['conda']} does not exist. "
            "Install it first (mlinfra.mlhost.miniforge), or give prefix."
        )
    return prefix, req


def closure(records: dict[str, dict[str, t.Any]], names: t.Iterable[str]) -> set[str]:
    """The names the requested names need, following the records' depends."""
    seen: set[str] = set()
    todo = [n for n in names if n in records]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in records[name].get("depends") or []:
            dep_name = dependency_name(dep)
            if dep_name in records and dep_name not in seen:
                todo.append(dep_name)
    return seen


def compare(records: dict[str, dict[str, t.Any]], specs: list[MatchSpec], prune: bool) -> tuple[list[str], list[str]]:
    """(unmet specs, extra packages that prune would remove)."""
    unmet = [s.text for s in specs if not (s.name in records and s.matches(records[s.name]))]
    extra = sorted(set(records) - closure(records, [s.name for s in specs])) if prune else []
    return unmet, extra


def diff_records(before: dict[str, dict[str, t.Any]], after: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    def label(r: dict[str, t.Any]) -> str:
        return f"{r['version']}-{r.get('build', '')}".rstrip("-")

    added = {n: after[n]["version"] for n in sorted(after) if n not in before}
    removed = {n: before[n]["version"] for n in sorted(before) if n not in after}
    updated = {n: {"from": label(before[n]), "to": label(after[n])} for n in sorted(set(before) & set(after))
               if label(before[n]) != label(after[n])}
    return {"added": added, "removed": removed, "updated": updated}


def explicit_lock(records: dict[str, dict[str, t.Any]], prefix: str) -> str:
    lines = [f"# Explicit lock of {prefix}, written by mlinfra.mlhost.conda_env.",
             "# Create a copy with: conda create --name NAME --file THIS_FILE (or micromamba/pixi).",
             "@EXPLICIT"]
    for name in sorted(records):
        record = records[name]
        url = record.get("url") or ""
        if url:
            lines.append(url + (f"#{record['md5']}" if record.get("md5") else ""))
        else:
            lines.append(f"# {name}=={record['version']}={record.get('build', '')} (no URL in its record)")
    return "\n".join(lines) + "\n"


def conda_command(exe: str, action: str, prefix: str, channels: list[str], specs: list[str], dry_run: bool = False) -> list[str]:
    """A mamba/conda command line: create/install with --json, --yes, and the request's channels only."""
    argv = [exe, action, "--yes", "--json", "--quiet", "--prefix", prefix]
    if action in ("create", "install"):
        if channels:
            argv.append("--override-channels")
            for channel in channels:
                argv += ["--channel", channel]
        argv.append("--strict-channel-priority")
    if dry_run:
        argv.append("--dry-run")
    return argv + list(specs)


def conda_json(text: str) -> dict[str, t.Any]:
    """conda/mamba --json output (the last JSON document in it)."""
    text = (text or "").strip()
    start = text.find("{")
    while start != -1:
        try:
            return json.loads(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
    return {}


def _tail(result: t.Any, lines: int = 8) -> str:
    if result is None:
        return "the program was not found"
    text = (result.err or "") + (result.out or "")
    return " | ".join(text.strip().splitlines()[-lines:]) or f"rc={result.rc}"


# --- the run -------------------------------------------------------------------------------

class CondaEnv:
    """One run of conda_env against a host, through the one door ``runner``."""

    def __init__(self, params: dict[str, t.Any], runner: t.Any, check_mode: bool) -> None:
        self.p = params
        self.runner = runner
        self.check_mode = check_mode
        self.warnings: list[str] = []
        self.root = Sysroot("/")
        venv = os.path.join(params["tool_dir"], TOOL_VENV)
        self.tool = {"venv": venv, "python": os.path.join(venv, "bin", "python"), "cache": os.path.join(params["tool_dir"], "rattler-cache")}
        self._old: str | None = None

    # --- engine choice -------------------------------------------------------------
    def engine(self) -> tuple[str, str | None]:
        engine = self.p["engine"]
        base = os.path.normpath(self.p["conda"]) if self.p["conda"] else None
        found = {}
        for name in ("mamba", "conda"):
            for sub in ("bin", "condabin"):
                path = os.path.join(base, sub, name) if base else ""
                if base and os.access(path, os.X_OK) and name not in found:
                    found[name] = path
        if engine == "auto":
            engine = "mamba" if "mamba" in found else "conda" if "conda" in found else "rattler"
        if engine in ("mamba", "conda") and engine not in found:
            raise CondaEnvError(
                f"engine {engine} needs {engine} in the conda base {base or '(conda not set)'}, and it is not there. "
                "Install the base with mlinfra.mlhost.miniforge, point conda at it, or use engine: rattler."
            )
        return engine, found.get(engine)

    # --- the tool venv (py-rattler, packaging) --------------------------------------------
    def _tool_site(self) -> None:
        _venv.use_tool_site(self.tool["venv"])

    def tools_ready(self, need_rattler: bool) -> bool:
        if not rq.have_packaging():
            self._tool_site()
        return rq.have_packaging() and (_venv.tool_has(self.tool["venv"], "rattler") or not need_rattler)

    def ensure_tools(self, need_rattler: bool) -> bool:
        """Make sure packaging (and py-rattler when asked) can be used; True when they are there."""
        if self.tools_ready(need_rattler):
            return True
        if self.check_mode:
            return False
        check_target(self.p["tool_dir"], "tool_dir", "/opt/mlhost/tools")
        wants = [f"packaging=={TOOL_PACKAGING_VERSION}"] + ([f"py-rattler=={TOOL_RATTLER_VERSION}"] if need_rattler else [])
        _venv.ensure_tool_venv(self.runner, self.tool["venv"], wants, python=sys.executable, find_links=self.p["find_links"],
                               index_url=self.p["index_url"], ca_bundle=self.p["ca_bundle"])
        return True

    # --- reading ------------------------------------------------------------------------
    def records(self, prefix: str) -> dict[str, dict[str, t.Any]]:
        records, bad = _conda.read_records(self.root, prefix)
        if bad:
            self.warnings.append(f"Unreadable conda-meta records in {prefix}: {', '.join(bad)} (ignored).")
        return records

    def pip_unmet(self, prefix: str, pip: list[str]) -> tuple[list[str], dict[str, str]]:
        if not pip:
            return [], {}
        python = os.path.join(prefix, "bin", "python")
        if not os.access(python, os.X_OK):
            return list(pip), {}
        result = self.runner.run([python, "-I", "-c", _venv.PROBE], check=False)
        if result is None or result.rc != 0:
            return list(pip), {}
        probe = json.loads(result.out.strip().splitlines()[-1])
        installed = {rq.canonical(n): v for n, v in probe["packages"].items()}
        reqs = rq.parse_lines(pip, "pip subsection")
        return [str(r) for r in reqs if not rq.satisfied(r, installed, probe["markers"])], installed

    # --- the run --------------------------------------------------------------------------
    def run(self, prefix: str, req: dict[str, t.Any]) -> dict[str, t.Any]:
        p = self.p
        result: dict[str, t.Any] = {"changed": False, "prefix": prefix, "added": {}, "removed": {}, "updated": {}, "pip": {}}
        if p["state"] == "absent":
            exists = os.path.lexists(prefix)
            if exists and not os.path.isdir(os.path.join(prefix, "conda-meta")):
                raise CondaEnvError(f"{prefix} exists but is not a conda environment (no conda-meta): not removing it.")
            before = self.records(prefix) if exists else {}
            if exists and not self.check_mode:
                shutil.rmtree(prefix)
            result.update(changed=exists, removed={n: r["version"] for n, r in sorted(before.items())}, packages={})
            return result

        engine, exe = self.engine()
        result["engine"] = engine
        if req["pip"] and not self.ensure_tools(need_rattler=False):
            self.warnings.append("packaging is not available until the first real run installs the tool venv; check mode reports a change.")
        exists = os.path.isdir(os.path.join(prefix, "conda-meta"))
        before = self.records(prefix) if exists else {}
        unmet, extra = compare(before, req["specs"], p["prune"])
        pip_unmet = self.pip_unmet(prefix, req["pip"])[0] if exists and rq.have_packaging() else list(req["pip"])
        result["packages"] = {n: r["version"] for n, r in sorted(before.items())}
        result["unmet"] = unmet
        if exists and not unmet and not extra and not pip_unmet:
            result["changed"] = self.write_lock(before, prefix)
            return result

        if self.check_mode:
            result["changed"] = True
            result.update(self.plan(engine, exe, prefix, req, before, unmet, extra))
            result["pip"] = {"install": pip_unmet} if pip_unmet else {}
            return result

        if unmet or extra or not exists:
            if engine == "rattler":
                after = self.apply_rattler(prefix, req, before)
            else:
                after = self.apply_conda(engine, exe, prefix, req, before, exists, extra)
        else:
            after = before
        try:
            if pip_unmet or (req["pip"] and after is not before):
                result["pip"] = self.apply_pip(prefix, req["pip"])
            after = self.records(prefix)
            still = compare(after, req["specs"], False)[0]
            if still:
                raise CondaEnvError(f"After the {engine} run, {prefix} still does not meet: {', '.join(still)}.", unmet=still)
        except BaseException:
            self._undo(prefix)
            raise
        self.finish()
        result.update(diff_records(before, after))
        result["packages"] = {n: r["version"] for n, r in sorted(after.items())}
        result["unmet"] = []
        self.write_lock(after, prefix)
        result["changed"] = True
        return result

    # --- plans (check mode) ----------------------------------------------------------------------
    def solve_specs(self, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]]) -> list[str]:
        specs = [s.text for s in req["specs"]]
        if not self.p["prune"]:  # keep what the env holds beyond the request (conda install does the same)
            specs += sorted(set(before) - closure(before, [s.name for s in req["specs"]]))
        return specs

    def plan(self, engine: str, exe: str | None, prefix: str, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]],
             unmet: list[str], extra: list[str]) -> dict[str, t.Any]:
        if not unmet and not extra and before:
            return {}
        if engine == "rattler":
            if not self.tools_ready(need_rattler=True):
                self.warnings.append("py-rattler is not in the tool venv yet, so check mode cannot solve: the plan is the unmet specs.")
                return {"added": {s: "(unsolved)" for s in unmet}, "removed": {n: before[n]["version"] for n in extra}}
            solved = self.rattler("solve", prefix, prefix, req, before)
            return diff_records(before, {r["name"]: r for r in solved})
        action = "install" if before else "create"
        result = self.runner.run(conda_command(exe, action, prefix, req["channels"], self.solve_specs(req, before), dry_run=True), check=False)
        data = conda_json(result.out if result else "")
        if result is None or result.rc != 0 or not data.get("success", True):
            raise CondaEnvError(f"{engine} cannot solve the request for {prefix}: {data.get('message') or _tail(result)}. Nothing was changed.")
        actions = data.get("actions") or {}
        link = {a["name"]: {"version": a["version"], "build": a.get("build_string", a.get("build", ""))} for a in actions.get("LINK", [])}
        unlink = {a["name"]: {"version": a["version"], "build": a.get("build_string", a.get("build", ""))} for a in actions.get("UNLINK", [])}
        after = {n: r for n, r in before.items() if n not in unlink}
        after.update(link)
        for name in extra:
            after.pop(name, None)
        return diff_records(before, after)

    # --- rattler ------------------------------------------------------------------------------------
    def rattler(self, mode: str, prefix: str, target: str, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        if not req["channels"]:
            raise CondaEnvError("engine rattler needs channels (in the file or the channels option): it reads no .condarc.")
        request = {"mode": mode, "prefix": prefix, "target": target, "cache_dir": self.tool["cache"],
                   "channels": req["channels"], "specs": self.solve_specs(req, before), "requested": [s.text for s in req["specs"]]}
        env = {"SSL_CERT_FILE": self.p["ca_bundle"]} if self.p["ca_bundle"] else {}
        result = self.runner.run([self.tool["python"], "-I", "-c", RATTLER_HELPER], check=False, data=json.dumps(request),
                                 env=env, timeout=self.p["timeout"])
        data = conda_json(result.out if result else "")
        if result is None or "records" not in data:
            kind = data.get("error", "error")
            message = (data.get("message") or _tail(result)).strip()
            if kind == "SolverError":
                hint = "The channels do not hold packages that satisfy the request: fix the specs or add the channel that has them."
            elif kind in ("GatewayError", "FetchRepoDataError", "InvalidChannelError"):
                hint = "A channel could not be read: check its name or URL, the network, and ca_bundle for a TLS-intercepting proxy."
            else:
                hint = "See the message above."
            raise CondaEnvError(f"rattler could not {mode} the request for {prefix} ({kind}): {message} {hint} "
                                f"The environment at {prefix} was left as it was.", engine_error=kind)
        return data["records"]

    def apply_rattler(self, prefix: str, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
        self.ensure_tools(need_rattler=True)
        parent, base = os.path.split(prefix)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        new = os.path.join(parent, f".{base}.mlhost-new-{secrets.token_hex(3)}")
        old = os.path.join(parent, f".{base}.mlhost-old-{secrets.token_hex(3)}")
        try:
            self.rattler("install", prefix, new, req, before)
            built = _conda.read_records(self.root, new)[0]
            unmet = compare(built, req["specs"], False)[0]
            if unmet:
                raise CondaEnvError(f"The new environment does not meet {', '.join(unmet)}; the environment at {prefix} was left as it was.")
            _venv.clear_world_writable(new)
            os.chmod(new, 0o755)
            if os.path.lexists(prefix):
                os.rename(prefix, old)
            os.rename(new, prefix)
        except BaseException:
            _venv.remove_tree(new)
            if os.path.lexists(old) and not os.path.lexists(prefix):
                os.rename(old, prefix)
            raise
        self._old = old
        return built

    # --- mamba / conda ---------------------------------------------------------------------------------
    def apply_conda(self, engine: str, exe: str | None, prefix: str, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]],
                    exists: bool, extra: list[str]) -> dict[str, dict[str, t.Any]]:
        if not exe:
            raise CondaEnvError(f"engine {engine}: no {engine} program in the conda base.")
        unmet = compare(before, req["specs"], False)[0]
        if unmet or not exists:
            argv = conda_command(exe, "install" if exists else "create", prefix, req["channels"], self.solve_specs(req, before))
            result = self.runner.run(argv, check=False, timeout=self.p["timeout"])
            data = conda_json(result.out if result else "")
            if result is None or result.rc != 0 or not data.get("success", False):
                message = data.get("message") or data.get("error") or _tail(result)
                raise CondaEnvError(
                    f"{engine} could not {'update' if exists else 'create'} {prefix}: {str(message).strip()} "
                    f"({data.get('exception_name', 'rc=%s' % (result.rc if result else None))}). "
                    + (f"conda rolls a failed transaction back: the environment at {prefix} was left as it was." if exists
                       else f"No environment was made at {prefix}."),
                    engine_error=data.get("exception_name"),
                )
        if extra:
            result = self.runner.run(conda_command(exe, "remove", prefix, [], extra), check=False, timeout=self.p["timeout"])
            data = conda_json(result.out if result else "")
            if result is None or result.rc != 0:
                raise CondaEnvError(f"{engine} could not remove {', '.join(extra)} from {prefix} (prune): {data.get('message') or _tail(result)}")
        return self.records(prefix)

    # --- pip ------------------------------------------------------------------------------------------
    def apply_pip(self, prefix: str, pip: list[str]) -> dict[str, t.Any]:
        python = os.path.join(prefix, "bin", "python")
        if not os.access(python, os.X_OK):
            raise CondaEnvError(f"The pip subsection needs python (and pip) in the environment, and {prefix} has no bin/python: "
                                "add python and pip to dependencies.")
        self.ensure_tools(need_rattler=False)
        before = self.pip_unmet(prefix, pip)[1]
        req_file = os.path.join(prefix, "conda-meta", "mlhost-pip-requirements.txt")
        with open(req_file, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in pip))
        argv = [python, "-m", "pip", "install", "--no-warn-script-location", "-r", req_file]
        for link in self.p["find_links"]:
            argv += ["--find-links", link]
        result = self.runner.run(argv, check=False, env=_venv.installer_env("pip", self.p["index_url"], [], self.p["ca_bundle"]),
                                 timeout=self.p["timeout"])
        if result is None or result.rc != 0:
            raise CondaEnvError(f"pip could not install the pip subsection into {prefix}: {_tail(result, 12)}", failing=_venv.failing_requirement(
                (result.err + result.out) if result else "", [rq.canonical(r.name) for r in rq.parse_lines(pip, "pip")]))
        after = self.pip_unmet(prefix, pip)[1]
        return rq.diff_installed(before, after)

    def _undo(self, prefix: str) -> None:
        """After a failed pip step: put the previous env (kept aside by the rattler swap) back."""
        old = getattr(self, "_old", None)
        if old and os.path.lexists(old):
            failed = prefix + ".mlhost-failed-" + secrets.token_hex(3)
            os.rename(prefix, failed)
            os.rename(old, prefix)
            _venv.remove_tree(failed)
            self._old = None

    def finish(self) -> None:
        """Remove the previous env kept aside by a successful rattler swap."""
        old = getattr(self, "_old", None)
        if old:
            _venv.remove_tree(old)
            self._old = None

    def write_lock(self, records: dict[str, dict[str, t.Any]], prefix: str) -> bool:
        lock = self.p["lock_file"]
        if not lock:
            return False
        text = explicit_lock(records, prefix)
        return _files.differs(lock, text) if self.check_mode else _files.write_if_changed(lock, text)
