# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The conda_env module's logic: compare conda-meta with the request, change only when it is unmet.

PRIVATE to the collection: no compatibility promise outside it.

Idempotence: what an environment holds is read from its ``conda-meta/*.json``
records (no conda process) and compared with the requested match specs
(``_conda_spec``: conda's version rules); with ``prune``, packages outside the
dependency closure of the request count as a change too. The ``pip:``
subsection is checked by ``pip_section`` before anything is made (with the
module's own ``packaging``: ``_requirements.load_packaging``), and compared in
the env's own Python, as python_env does. Only an unmet request, or channels
other than those the env was built from (``conda-meta/mlhost-channels.sha256``),
starts an engine. With a file, the channels option replaces its channels.

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
  A conda prefix embeds its path (shebangs, RPATHs, text files), so the CLI's
  env cannot be built elsewhere and moved: an update whose pip step fails
  keeps its updated conda packages and fails naming the pip error.

With every engine, a new env (nothing was at its path before the run) whose
pip step or final check fails is removed (``_undo``): no half-built env is
left for the next run to take as made.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda, _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._conda_spec import MatchSpec, SpecError, dependency_name
from ansible_collections.mlinfra.mlhost.plugins.module_utils._environment_yml import EnvFileError, read_environment
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._miniforge import (
    check_channel, check_timeout, list_option, parse_url, refuse_nul, shown, text_option)
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

TOOL_RATTLER_VERSION = "0.28.0"
TOOL_PACKAGING_VERSION = _venv.TOOL_PACKAGING_VERSION
TOOL_VENV = "conda-venv"
MODULE = "mlinfra.mlhost.conda_env"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")

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


# --- the request ------------------------------------------------------------------------

NOTHING = "Nothing was changed."
ENV_EXAMPLE = "/opt/envs/train"
SECRET_OPTIONS = ("index_url", "find_links", "channels", "proxy_env")
_LEGACY_LOCK = re.compile(r"# Explicit lock of (?P<prefix>.+), written by mlinfra\.mlhost\.conda_env\.")
LEGACY_STATE = os.path.join("conda-meta", "mlhost-pip-requirements.txt")


def _shown(error: Exception) -> str:
    return shown(str(getattr(error, "msg", None) or error))


def check_name(name: t.Any, where: str = "name") -> str:
    text = text_option(name, where, "train") or ""
    if not _NAME.fullmatch(text) or len(text) > 128 or text in (".", "..") or text == "base":
        raise ModuleError(
            f"env name {text!r} ({where}) is not a plain name: it may not hold a path, spaces or '..', nor be 'base'. "
            f"Use a name such as 'train', or set prefix to an absolute path. {NOTHING}"
        )
    return text


def env_prefix(params: dict[str, t.Any], file_data: dict[str, t.Any] | None) -> str:
    """The env's path: ``prefix``, or ``<conda>/envs/<name>`` (from the options, else from the file)."""
    name = params["name"] or (None if params["prefix"] else (file_data or {}).get("name"))
    prefix = params["prefix"] or (None if params["name"] else (file_data or {}).get("prefix"))
    tool_dir = params.get("tool_dir")
    if prefix:
        norm = _ownership.check_target(text_option(prefix, "prefix", ENV_EXAMPLE), "prefix", ENV_EXAMPLE, tool_dir)
        if params["conda"] and norm == os.path.normpath(params["conda"]):
            raise ModuleError(f"prefix {prefix!r} is the conda base itself: manage the base with mlinfra.mlhost.miniforge, "
                              f"and give envs a prefix or name of their own. {NOTHING}")
        return norm
    if not name:
        raise ModuleError(f"Give the environment a name or a prefix (or a file whose environment.yml has name:). {NOTHING}")
    name = check_name(name, "name" if params["name"] else "the file's name:")
    if not params["conda"]:
        raise ModuleError(f"env name {name!r} needs conda (the conda base whose envs/ holds it), or give prefix instead. {NOTHING}")
    return _ownership.check_target(os.path.join(os.path.normpath(params["conda"]), "envs", name), "prefix (conda/envs/name)",
                                   ENV_EXAMPLE, tool_dir)


# The pip lines an environment.yml's pip subsection may hold beside requirements: where pip finds packages.
PIP_INDEX_LINES = {"--index-url": "index_url", "-i": "index_url", "--extra-index-url": "extra_index_urls",
                   "--find-links": "find_links", "-f": "find_links"}
_PIP_OPTION = re.compile(r"(?P<opt>--?[A-Za-z][A-Za-z0-9-]*)(?:(?:=|\s+)(?P<value>.*))?")
_NAMELESS = re.compile(r"(?:\.|/|~|[A-Za-z][A-Za-z0-9+.-]*:)")  # a path or URL where a requirement names its project
PIP_ACCEPTS = ("The pip subsection takes requirements (numpy>=1.26, name[extra]==1.2, name @ https://... or "
               "name @ file:///abs/path) and --index-url, --extra-index-url and --find-links lines")


def _pip_refuse(where: str, line: str, why: str) -> t.NoReturn:
    raise ModuleError(f"{where}: {shown(line)!r} {why} {NOTHING}")


def _pip_index_line(where: str, line: str, found: t.Any, sources: dict[str, t.Any]) -> None:
    opt, value = found.group("opt"), (found.group("value") or "").strip()
    key = PIP_INDEX_LINES[opt]
    if not value or any(c.isspace() for c in value):
        _pip_refuse(where, line, f"needs one URL{' or directory' if key == 'find_links' else ''} after {opt}, such as "
                    f"{opt} https://pypi.example/simple.")
    if key == "find_links" and "://" not in value:
        if not os.path.isabs(value):
            _pip_refuse(where, line, "is a relative directory: give --find-links an absolute path or an http(s)/file:// URL.")
        if not os.path.isdir(value):
            _pip_refuse(where, line, f"names {value}, which is not a directory on the host: copy the wheels there first, or fix "
                        "the path.")
    else:
        parse_url(value, f"{where} ({opt})", ("http", "https", "file"), "https://pypi.example/simple")
        local = urllib.parse.urlsplit(value).path if value.lower().startswith("file:") else None
        if local is not None and not os.path.exists(urllib.parse.unquote(local)):
            _pip_refuse(where, line, f"names {local}, which does not exist on the host: copy it there first, or fix the path.")
    if key == "index_url":
        if sources["index_url"] not in (None, value):
            _pip_refuse(where, line, "is a second --index-url: pip uses one index; give the others as --extra-index-url.")
        sources["index_url"] = value
    elif value not in sources[key]:
        sources[key].append(value)


def _pip_option_line(where: str, line: str) -> tuple[str, t.Any]:
    found = _PIP_OPTION.fullmatch(line)
    opt = found.group("opt") if found else line.split()[0]
    if opt in ("-e", "--editable"):
        target = (found.group("value") or "").strip() if found else ""
        _pip_refuse(where, line, (
            f"is an editable install (-e) of {shown(target) or 'a source tree'}. conda_env builds environments from packages, "
            "not from working copies (and '.' would be the host's working directory, not your project's): install a "
            "release instead, by name from an index (with --index-url or --extra-index-url) or a wheel directory "
            "(--find-links /srv/wheels), or as a direct reference (name @ git+https://host/org/repo@v1.2, "
            "name @ file:///srv/src/name). For a working copy, use mlinfra.mlhost.python_env or pip in the env yourself."))
    if opt not in PIP_INDEX_LINES:
        _pip_refuse(where, line, f"is the pip option {opt}, which the module does not pass on. {PIP_ACCEPTS}; the module's "
                    "index_url and find_links options apply to every pip subsection.")
    return opt, found


def pip_section(lines: list[str], source: str, fetch_wheel: t.Any = None,
                tool_sites: t.Iterable[str] = ()) -> tuple[list[str], dict[str, t.Any]]:
    """The pip subsection checked with the module's own packaging (``_requirements.load_packaging``), before anything is
    made: (requirement lines, {index_url, extra_index_urls, find_links} from its index lines). Editable installs, other
    pip options, paths and URLs without a project name, local paths that do not exist and bad syntax are refused."""
    sources: dict[str, t.Any] = {"index_url": None, "extra_index_urls": [], "find_links": []}
    texts: list[str] = []  # for parse_lines: "" where an index line stood, so its line numbers stay the file's
    kept: list[str] = []
    for number, raw in enumerate(lines, start=1):
        where = f"{source} line {number}"
        line = rq.strip_line(raw, number, source)
        if line.startswith("-"):
            _opt, found = _pip_option_line(where, line)
            _pip_index_line(where, line, found, sources)
            line = ""
        elif _NAMELESS.match(line):
            _pip_refuse(where, line, (
                "is a path or URL without a project name, which the module cannot compare with what the env holds. Write it "
                "as a direct reference with the project's name and an absolute URL: name @ file:///srv/wheels/"
                "name-1.0-py3-none-any.whl, name @ git+https://host/org/repo@v1.2."))
        texts.append(line)
        if line:
            kept.append(line)
    rq.load_packaging(tool_sites, fetch_wheel)
    for number, requirement in zip((n for n, x in enumerate(texts, 1) if x), rq.parse_lines(texts, source)):
        url = requirement.url
        if not url:
            continue
        where = f"{source} line {number}"
        if "://" not in url:
            _pip_refuse(where, texts[number - 1], "points at a relative path: give the absolute URL, such as "
                        "name @ file:///srv/src/name.")
        if url.lower().startswith("file:"):
            local = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
            if not os.path.exists(local):
                _pip_refuse(where, texts[number - 1], f"names {local}, which does not exist on the host: copy it there first, or "
                            "fix the path.")
    return kept, sources


def requested(params: dict[str, t.Any], fetch_wheel: t.Any = None) -> dict[str, t.Any]:
    """{file, channels, channels_replaced, specs (MatchSpec), pip (requirement lines), pip_sources} from file or specs,
    validated (the pip subsection with the module's own packaging: ``pip_section``)."""
    file_data = None
    if params["file"]:
        if not os.path.isabs(params["file"]):
            raise ModuleError(f"file {params['file']!r} must be an absolute path on the host. {NOTHING}")
        try:
            file_data = read_environment(params["file"])
        except EnvFileError as exc:
            raise ModuleError(f"{_shown(exc)} {NOTHING}") from exc
    texts = list(file_data["conda"]) if file_data else []
    texts += [s for s in params["specs"] if s not in texts]
    pip = list(file_data["pip"]) if file_data else []
    if params["state"] == "present" and not texts:
        raise ModuleError(f"Nothing to install: give file (an environment.yml) or specs (match specs such as python=3.11). {NOTHING}")
    specs = []
    for text in texts:
        try:
            specs.append(MatchSpec(text))
        except SpecError as exc:
            raise ModuleError(f"match spec {text!r} is not valid: {exc} Fix it in specs (or the file's dependencies). {NOTHING}") from exc
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ModuleError(f"{', '.join(dupes)} requested more than once in specs (and the file's dependencies): join the constraints "
                          f"into one spec (numpy >=1.26,<2). {NOTHING}")
    channels, replaced = request_channels(params, file_data)
    pip_sources: dict[str, t.Any] = {"index_url": None, "extra_index_urls": [], "find_links": []}
    if pip and params["state"] == "present":
        pip, pip_sources = pip_section(pip, (params["file"] or "specs") + " pip subsection", fetch_wheel,
                                       _venv.tool_sites(os.path.join(params["tool_dir"], TOOL_VENV)))
        if params["index_url"] and pip_sources["index_url"] not in (None, params["index_url"]):
            raise ModuleError(f"index_url is set, and {params['file']}'s pip subsection has an --index-url line of its own: pip uses "
                              f"one index. Drop one of them (or turn the file's into --extra-index-url). {NOTHING}")
    return {"file": file_data, "channels": channels, "channels_replaced": replaced, "specs": specs, "pip": pip,
            "pip_sources": pip_sources}


def request_channels(params: dict[str, t.Any], file_data: dict[str, t.Any] | None) -> tuple[list[str], dict[str, t.Any] | None]:
    """The channels the request uses, and {file, by} when the channels option replaced the file's.

    With a file and the channels option, the option replaces the file's channels (a file that lists defaults is used as
    it is); without the option the file's channels are used, checked; without a file the option's. "nodefaults" is
    conda's marker for "do not add defaults", not a channel: dropped (the module never adds defaults)."""
    file_channels = list((file_data or {}).get("channels", []))
    if file_data and params["channels"]:
        channels = [check_channel(c, "channels") for c in params["channels"] if c != "nodefaults"]
        return channels, {"file": [shown(c) for c in file_channels], "by": [shown(c) for c in channels]}
    if params["channels"]:
        return [check_channel(c, "channels") for c in params["channels"] if c != "nodefaults"], None
    out = []
    for channel in file_channels:
        if channel == "nodefaults":
            continue
        try:
            out.append(check_channel(channel, "the file's channels"))
        except ModuleError as exc:
            raise ModuleError(f"{exc.msg.replace(NOTHING, '').rstrip()} To use {params['file']} as it is, set the channels option: it "
                              f"replaces the file's channels (channels: [conda-forge]). {NOTHING}") from exc
    return out, None


def _check_file_target(path: str, option: str, example: str) -> str:
    """A file the module writes (lock_file): absolute, clean, not a system file, not a directory."""
    if not os.path.isabs(path):
        raise ModuleError(f"{option} {path!r} must be an absolute path, such as {example}. {NOTHING}")
    norm = os.path.normpath(path)
    for where in (norm, os.path.realpath(norm)):
        reason = _ownership.protected_reason(where)
        if reason:
            shown_path = repr(path) if where == norm else f"{path!r} (a link to {where})"
            raise ModuleError(f"{option} {shown_path} {reason}: the collection never writes such a file. Choose a path of its own, "
                              f"such as {example}. {NOTHING}")
    if os.path.isdir(norm):
        raise ModuleError(f"{option} {path!r} is a directory: give the path of a file, such as {example}. {NOTHING}")
    return norm


def lock_owned(path: str) -> bool:
    """True when the lock file is absent, carries the collection's marker line, or an earlier version's header."""
    return _ownership.text_is_owned(path, lambda first: _LEGACY_LOCK.fullmatch(first) is not None)


def validate(params: dict[str, t.Any], fetch_wheel: t.Any = None) -> tuple[str, dict[str, t.Any]]:
    """Every option checked before anything is changed on the host; returns (prefix, request)."""
    refuse_nul(params, SECRET_OPTIONS)
    p = dict(params)
    for key, example in (("name", "train"), ("prefix", ENV_EXAMPLE), ("file", "/etc/mlhost/conda/train.yml"), ("conda", "/opt/miniforge3"),
                         ("lock_file", "/opt/envs/train.lock"), ("tool_dir", "/opt/mlhost/tools"), ("index_url", "https://pypi.example/simple"),
                         ("ca_bundle", "/etc/ssl/certs/ca-certificates.crt")):
        p[key] = text_option(params.get(key), key, example)
    for key, example in (("specs", "[python=3.11]"), ("channels", "[conda-forge]"), ("find_links", "[/srv/wheelhouse]")):
        p[key] = list_option(params.get(key), key, example)
    check_timeout(params.get("timeout", 1800))
    tool_dir = p["tool_dir"] or "/opt/mlhost/tools"
    if not os.path.isabs(tool_dir):
        raise ModuleError(f"tool_dir {tool_dir!r} must be an absolute path, such as /opt/mlhost/tools. {NOTHING}")
    for where in (os.path.normpath(tool_dir), os.path.realpath(tool_dir)):
        reason = _ownership.protected_reason(where)
        if reason:
            raise ModuleError(f"tool_dir {tool_dir!r} {reason}: the collection's tool venvs need a directory of their own, such as "
                              f"/opt/mlhost/tools. {NOTHING}")
    p["tool_dir"] = os.path.normpath(tool_dir)
    if p["conda"] and not os.path.isabs(p["conda"]):
        raise ModuleError(f"conda {p['conda']!r} must be the absolute path of a conda base, such as /opt/miniforge3. {NOTHING}")
    if p["index_url"]:
        parse_url(p["index_url"], "index_url", ("http", "https", "file"), "https://pypi.example/simple")
    for link in p["find_links"]:
        if "://" in link:
            parse_url(link, "find_links", ("http", "https", "file"), "https://wheels.example/ or /srv/wheelhouse")
        elif not os.path.isabs(link):
            raise ModuleError(f"find_links entry {link!r} must be an http(s):// or file:// URL, or an absolute path. {NOTHING}")
    if p["ca_bundle"] and not (os.path.isabs(p["ca_bundle"]) and os.path.isfile(p["ca_bundle"])):
        raise ModuleError(f"ca_bundle {p['ca_bundle']!r} is not a file on the host: give the absolute path of a PEM bundle, such as "
                          f"/etc/ssl/certs/ca-certificates.crt, or leave it unset. {NOTHING}")
    if p["lock_file"]:
        p["lock_file"] = _check_file_target(p["lock_file"], "lock_file", "/opt/envs/train.lock")
        if not lock_owned(p["lock_file"]):
            _ownership.refuse_unowned_text(p["lock_file"], "lock_file")
    req = requested(p, fetch_wheel)
    prefix = env_prefix(p, req["file"])
    if p["lock_file"] and (p["lock_file"] == prefix or p["lock_file"].startswith(prefix + "/")):
        raise ModuleError(f"lock_file {p['lock_file']!r} is inside the environment {prefix}, which a rebuild replaces: put it beside, "
                          f"such as {prefix}.lock. {NOTHING}")
    req["params"] = p
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
    lines = [f"{_ownership.TEXT_MARKER}.conda_env: explicit lock of {prefix}.",
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


def env_owned(prefix: str, lock_file: str | None) -> bool:
    """The env carries the marker, or was made by an earlier version of the collection (its pip state file, or its lock)."""
    if _ownership.is_owned_dir(prefix):
        return True
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        return False
    if os.path.isfile(os.path.join(prefix, LEGACY_STATE)):
        return True
    if lock_file and os.path.isfile(lock_file) and not os.path.islink(lock_file):
        try:
            with open(lock_file, encoding="utf-8", errors="replace") as handle:
                first = handle.readline().rstrip("\n")
        except OSError:
            return False
        found = _LEGACY_LOCK.fullmatch(first)
        return bool(found and found.group("prefix") == prefix)
    return False


def reveal_plain_channels(host: t.Any, channels: list[str]) -> None:
    """channels is no_log (a channel URL may carry a token), and ansible-core then masks every occurrence of each item in
    the whole result, so the channels a run used could not be reported. An item that holds no secret (a name such as
    conda-forge, a path, a URL without user-info, query or conda token) is taken off the module's no_log values; one
    that holds a secret stays hidden (and is shown masked by the module)."""
    hidden = getattr(getattr(host, "module", None), "no_log_values", None)
    if isinstance(hidden, set):
        for channel in channels:
            if shown(channel) == channel:
                hidden.discard(channel)


# Not a .json file: conda-meta/*.json are the package records (``_conda.read_records``).
CHANNELS_STATE = os.path.join("conda-meta", "mlhost-channels.sha256")


def channels_fingerprint(channels: list[str]) -> str:
    """The sha256 of the channel list an env was built from (a channel URL may hold a token: only its digest is kept)."""
    return _files.sha256_bytes(json.dumps(list(channels)).encode("utf-8"))


def read_channels_state(prefix: str) -> str | None:
    """The fingerprint of the channels the collection last built the env from; None for an env made before it kept one."""
    try:
        with open(os.path.join(prefix, CHANNELS_STATE), encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def write_channels_state(prefix: str, channels: list[str]) -> None:
    _files.atomic_write(os.path.join(prefix, CHANNELS_STATE), channels_fingerprint(channels) + "\n", 0o644)


def packages_text(packages: dict[str, str]) -> str:
    return "".join(f"{k}=={v}\n" for k, v in sorted(packages.items()))


# --- the run -------------------------------------------------------------------------------

class CondaEnv(Worker):
    """plan(): every option checked, conda-meta read, the change solved; apply(plan): create, update, prune or remove."""

    def __init__(self, host: t.Any) -> None:
        super().__init__(host)
        self.p = host.params
        self.warnings: list[str] = []
        self.root = Sysroot("/")
        self.tool: dict[str, str] = {}
        self._old: str | None = None

    def fetch_wheel(self, name: str, sha256: str) -> tuple[str | None, str]:
        """A verified packaging wheel for the plan, where the host has none (``_venv.fetch_wheel``)."""
        p = self.params
        return _venv.fetch_wheel(self.host, name, sha256, find_links=p.get("find_links") or [], index_url=p.get("index_url"),
                                 offline=False, ca=p.get("ca_bundle") or _venv.system_ca_bundle())

    def _set_tool(self, tool_dir: str) -> None:
        venv = os.path.join(tool_dir, TOOL_VENV)
        self.tool = {"venv": venv, "python": os.path.join(venv, "bin", "python"), "cache": os.path.join(tool_dir, "rattler-cache")}

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
            raise ModuleError(
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
        """Make sure packaging (and py-rattler when asked) can be used (apply only: the plan never builds tools)."""
        if self.tools_ready(need_rattler):
            return True
        _ownership.check_target(self.p["tool_dir"], "tool_dir", "/opt/mlhost/tools")
        wants = [f"packaging=={TOOL_PACKAGING_VERSION}"] + ([f"py-rattler=={TOOL_RATTLER_VERSION}"] if need_rattler else [])
        venv = self.tool["venv"]
        wheel = None
        if not _venv.has_own_pip(venv):
            wheel = _venv.pip_wheel_for(self.fetch_wheel)[0]  # None: ensurepip, whose failure names the fix
        _venv.ensure_tool_venv(self.runner, venv, wants, python=sys.executable, find_links=self.p["find_links"],
                               index_url=self.p["index_url"], ca_bundle=self.p["ca_bundle"], pip_wheel=wheel)
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

    # --- the plan --------------------------------------------------------------------------
    def plan(self) -> Plan:
        prefix, req = validate(self.params, self.fetch_wheel)
        p = req["params"]  # validate's copy of the options
        # The solver's downloads and the pip step trust the host's system store unless ca_bundle names another bundle
        # (pip in the env would use certifi's roots, rattler its own).
        p["ca_bundle"] = p["ca_bundle"] or _venv.system_ca_bundle()
        self.p = p
        self.prefix, self.req = prefix, req
        reveal_plain_channels(self.host, p["channels"])
        self._set_tool(p["tool_dir"])
        lock = p["lock_file"]
        result: dict[str, t.Any] = {"env_prefix": prefix, "added": {}, "removed": {}, "updated": {}, "pip": {},
                                    "lock": lock if p["state"] == "present" else None}
        exists = os.path.lexists(prefix)
        is_env = os.path.isdir(os.path.join(prefix, "conda-meta"))
        owned = exists and env_owned(prefix, lock)
        if p["state"] == "absent":
            result["packages"] = {}
            if not exists:
                return Plan(False, result, warnings=self.warnings)
            if not is_env:
                raise ModuleError(f"prefix {prefix} exists but is not a conda environment (no conda-meta): not removing it. {NOTHING}")
            if not owned:
                _ownership.refuse_unowned_dir(prefix, "prefix", "remove")
            before = self.records(prefix)
            result["removed"] = {n: r["version"] for n, r in sorted(before.items())}
            diff = {"before": packages_text(result["removed"]), "after": ""}
            return Plan(True, result, diff=diff, steps=[("remove",)], warnings=self.warnings)

        engine, exe = self.engine()
        result["engine"] = engine
        before = self.records(prefix) if is_env else {}
        unmet, extra = compare(before, req["specs"], p["prune"])
        # packaging was loaded by validate (the module's own: see _requirements.load_packaging) when there is a pip subsection
        pip_unmet = self.pip_unmet(prefix, req["pip"])[0] if is_env else list(req["pip"])
        result["packages"] = {n: r["version"] for n, r in sorted(before.items())}
        result["unmet"] = unmet
        result["channels"] = [shown(c) for c in req["channels"]]
        result["channels_replaced"] = req["channels_replaced"]
        recorded = read_channels_state(prefix) if is_env else None
        channels_changed = recorded is not None and recorded != channels_fingerprint(req["channels"])
        result["channels_changed"] = channels_changed
        conda_change = bool(unmet or extra or not is_env or channels_changed)
        steps: list[tuple[str, ...]] = []
        if exists and (conda_change or pip_unmet) and not owned:
            _ownership.refuse_unowned_dir(prefix, "prefix", "replace" if engine == "rattler" or not is_env else "change")
        if exists and owned and not _ownership.is_owned_dir(prefix):
            steps.append(("mark",))  # made by an earlier version of the collection: marked now
        after = dict(result["packages"])
        base_missing = bool(p["name"] and p["conda"] and not os.path.isdir(os.path.normpath(p["conda"])))
        if base_missing:
            self.warnings.append(f"The conda base {p['conda']} does not exist yet: the plan is the unmet specs (an earlier task may "
                                 "install it; a real run refuses until it exists).")
        if conda_change or pip_unmet:
            if base_missing:
                result["added"] = {s: "(unsolved)" for s in unmet}
                after.update(result["added"])
            elif conda_change:
                planned = self.solve_plan(engine, exe, prefix, req, before, unmet, extra)
                result.update(planned)
                after = {k: v for k, v in after.items() if k not in planned.get("removed", {})}
                after.update(planned.get("added", {}))
                after.update({k: v["to"] for k, v in planned.get("updated", {}).items()})
            result["pip"] = {"install": pip_unmet} if pip_unmet else {}
            steps.append(("env",))
        elif lock and _files.differs(lock, explicit_lock(before, prefix)):
            steps.append(("lock",))
        self.state = {"engine": engine, "exe": exe, "before": before, "is_env": is_env, "existed": exists, "extra": extra,
                      "channels_changed": channels_changed}
        diff = {"before": packages_text(result["packages"]), "after": packages_text(after)}
        if pip_unmet:
            diff["after"] += "".join(f"pip: {line}\n" for line in pip_unmet)
        return Plan(bool(steps), result, diff=diff, steps=steps, warnings=self.warnings)

    def apply(self, plan: Plan) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        prefix = self.prefix
        for step in plan.steps:
            if step[0] == "remove":
                shutil.rmtree(prefix)
            elif step[0] == "mark":
                _ownership.write_marker(prefix, MODULE)
            elif step[0] == "lock":
                self.write_lock(self.state["before"], prefix)
            elif step[0] == "env":
                out.update(self.change(prefix))
        return out

    def change(self, prefix: str) -> dict[str, t.Any]:
        """Create or update the env (and its pip subsection) as planned; verified against conda-meta afterwards."""
        p, req, st = self.p, self.req, self.state
        engine, exe, before, exists, extra = st["engine"], st["exe"], st["before"], st["is_env"], st["extra"]
        self._made = not st["existed"]  # a failure after this point removes what this run made (see _undo)
        if p["name"] and p["conda"] and not os.path.isdir(os.path.normpath(p["conda"])):
            raise ModuleError(
                f"env name {p['name']!r} lives in {p['conda']}/envs, but {p['conda']} does not exist. "
                f"Install it first (mlinfra.mlhost.miniforge), or give prefix. {NOTHING}"
            )
        if req["pip"]:
            self.ensure_tools(need_rattler=False)  # before the env is touched: a failure here changes nothing
        result: dict[str, t.Any] = {"pip": {}}
        unmet = compare(before, req["specs"], False)[0]
        if unmet or extra or not exists or st["channels_changed"]:
            if engine == "rattler":
                after = self.apply_rattler(prefix, req, before)
            else:
                after = self.apply_conda(engine, exe, prefix, req, before, exists, extra)
                if not exists:
                    _ownership.write_marker(prefix, MODULE)
        else:
            after = before
        try:
            if req["pip"] and (after is not before or self.pip_unmet(prefix, req["pip"])[0]):
                result["pip"] = self.apply_pip(prefix, req["pip"])
            after = self.records(prefix)
            still = compare(after, req["specs"], False)[0]
            if still:
                raise ModuleError(f"After the {engine} run, {prefix} still does not meet: {', '.join(still)}.", unmet=still)
        except BaseException:
            self._undo(prefix)
            raise
        self.finish()
        write_channels_state(prefix, req["channels"])
        result.update(diff_records(before, after))
        result["packages"] = {n: r["version"] for n, r in sorted(after.items())}
        result["unmet"] = []
        self.write_lock(after, prefix)
        return result

    def solve_specs(self, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]]) -> list[str]:
        specs = [s.text for s in req["specs"]]
        if not self.p["prune"]:  # keep what the env holds beyond the request (conda install does the same)
            specs += sorted(set(before) - closure(before, [s.name for s in req["specs"]]))
        return specs

    def solve_plan(self, engine: str, exe: str | None, prefix: str, req: dict[str, t.Any], before: dict[str, dict[str, t.Any]],
                   unmet: list[str], extra: list[str]) -> dict[str, t.Any]:
        """What the change would do to the records: solved (rattler solve, conda --dry-run) where the engine is at hand."""
        if engine == "rattler":
            if not self.tools_ready(need_rattler=True):
                self.warnings.append("py-rattler is not in the tool venv yet, so the plan cannot solve: it is the unmet specs.")
                return {"added": {s: "(unsolved)" for s in unmet}, "removed": {n: before[n]["version"] for n in extra}}
            solved = self.rattler("solve", prefix, prefix, req, before)
            return diff_records(before, {r["name"]: r for r in solved})
        action = "install" if before else "create"
        result = self.runner.run(conda_command(exe, action, prefix, req["channels"], self.solve_specs(req, before), dry_run=True), check=False)
        data = conda_json(result.out if result else "")
        if result is None or result.rc != 0 or not data.get("success", True):
            message = str(data.get("message") or data.get("error") or _tail(result)).strip()
            raise ModuleError(f"{engine} cannot solve the request for {prefix}: {message} "
                              f"({data.get('exception_name', 'rc=%s' % (result.rc if result else None))}). "
                              f"The environment at {prefix} was left as it was. {NOTHING}", engine_error=data.get("exception_name"))
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
            raise ModuleError("engine rattler needs channels (in the file or the channels option): it reads no .condarc.")
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
            raise ModuleError(f"rattler could not {mode} the request for {prefix} ({kind}): {message} {hint} "
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
                raise ModuleError(f"The new environment does not meet {', '.join(unmet)}; the environment at {prefix} was left as it was.")
            _venv.clear_world_writable(new)
            os.chmod(new, 0o755)
            _ownership.write_marker(new, MODULE)
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
            raise ModuleError(f"engine {engine}: no {engine} program in the conda base.")
        unmet = compare(before, req["specs"], False)[0]
        if unmet or not exists or self.state["channels_changed"]:
            argv = conda_command(exe, "install" if exists else "create", prefix, req["channels"], self.solve_specs(req, before))
            result = self.runner.run(argv, check=False, timeout=self.p["timeout"])
            data = conda_json(result.out if result else "")
            if result is None or result.rc != 0 or not data.get("success", False):
                message = data.get("message") or data.get("error") or _tail(result)
                raise ModuleError(
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
                raise ModuleError(f"{engine} could not remove {', '.join(extra)} from {prefix} (prune): {data.get('message') or _tail(result)}")
        return self.records(prefix)

    # --- pip ------------------------------------------------------------------------------------------
    def apply_pip(self, prefix: str, pip: list[str]) -> dict[str, t.Any]:
        python = os.path.join(prefix, "bin", "python")
        if not os.access(python, os.X_OK):
            raise ModuleError(f"The pip subsection needs python (and pip) in the environment, and {prefix} has no bin/python: "
                              "add python and pip to dependencies.")
        self.ensure_tools(need_rattler=False)
        before = self.pip_unmet(prefix, pip)[1]
        req_file = os.path.join(prefix, LEGACY_STATE)
        _files.atomic_write(req_file, "".join(f"{line}\n" for line in pip), 0o600)  # a direct reference may carry a token
        argv = [python, "-m", "pip", "install", "--no-warn-script-location", "-r", req_file]
        result = self.runner.run(argv, check=False, env=self.pip_env(), timeout=self.p["timeout"])
        if result is None or result.rc != 0:
            raise ModuleError(f"pip could not install the pip subsection into {prefix}: {_tail(result, 12)}", failing=_venv.failing_requirement(
                (result.err + result.out) if result else "", [rq.canonical(r.name) for r in rq.parse_lines(pip, "pip")]))
        after = self.pip_unmet(prefix, pip)[1]
        return rq.diff_installed(before, after)

    def pip_env(self) -> dict[str, str]:
        """pip's environment: the index lines of the pip subsection (or index_url), find_links and the CA bundle. URLs
        travel here, never in argv (they may hold a token)."""
        sources = self.req["pip_sources"]
        env = _venv.installer_env("pip", sources["index_url"] or self.p["index_url"], sources["extra_index_urls"], self.p["ca_bundle"])
        links = list(self.p["find_links"]) + [link for link in sources["find_links"] if link not in self.p["find_links"]]
        if links:
            env["PIP_FIND_LINKS"] = " ".join(links)
        return env

    def _undo(self, prefix: str) -> None:
        """After a failed pip step or check: put the previous env (kept aside by the rattler swap) back; a new env
        (nothing was at prefix before this run) is removed, so no half-built env is left for the next run to take as
        made."""
        old = getattr(self, "_old", None)
        if old and os.path.lexists(old):
            failed = prefix + ".mlhost-failed-" + secrets.token_hex(3)
            os.rename(prefix, failed)
            os.rename(old, prefix)
            _venv.remove_tree(failed)
            self._old = None
        elif getattr(self, "_made", False) and os.path.lexists(prefix) and _ownership.is_owned_dir(prefix):
            _venv.remove_tree(prefix)

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
        return _files.write_if_changed(lock, text)
