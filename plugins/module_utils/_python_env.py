# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The python_env module's worker: a pure plan (every option, the host read), then build beside and swap.

PRIVATE to the collection: no compatibility promise outside it.

``plan()`` checks every option, reads the interpreter and the environment, parses the request with
``packaging`` (always available to the plan: see ``_requirements.load_packaging``) and returns what a
run would do: ``create``, ``update``, ``rebuild``, ``remove`` or nothing, with the packages that would
be added, removed and upgraded. ``apply(plan)`` does exactly that. Nothing the collection did not create
is removed or replaced (``_ownership``).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import sys
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import TORCH_CUDA_TAGS, torch_cuda_tag
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_text
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Host, Plan, Worker

MODULE = "mlinfra.mlhost.python_env"
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
KNOWN_TORCH_TAGS = sorted({tag for tags in TORCH_CUDA_TAGS.values() for tag in tags})
MIN_PYTHON = (3, 8)
_NOTHING = " Nothing was changed."
_PATH_OPTIONS = ("path", "tool_dir", "lock_file", "requirements", "constraints", "ca_bundle", "python")


def _refuse(text: str, **details: t.Any) -> t.NoReturn:
    raise ModuleError(text + _NOTHING, **details)


def check_url(url: t.Any, what: str) -> None:
    """Refuse an index or wheel URL that is not http(s):// or file:// (its value is never shown: it may hold a token)."""
    text = "" if url is None else str(url)
    fix = f"Give {what} as a full http(s):// or file:// URL, such as https://pypi.example.internal/simple (its value is not shown: it may hold a token)."
    if not text or any(c.isspace() or c == "\0" for c in text):
        _refuse(f"{what} is not an http(s):// or file:// URL: it is empty or holds a blank, a line break or a NUL byte. {fix}")
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
        if parts.port is not None and not 0 < parts.port < 65536:  # a port that is not a number raises ValueError
            raise ValueError("port out of range")
    except ValueError:
        _refuse(f"{what} is not an http(s):// or file:// URL: it cannot be parsed (a malformed host or port). {fix}")
    if parts.scheme not in ("http", "https", "file"):
        scheme = f"its scheme is {parts.scheme}://" if parts.scheme else "it has no scheme"
        _refuse(f"{what} is not an http(s):// or file:// URL ({scheme}). {fix}")
    if parts.scheme != "file" and not host:
        _refuse(f"{what} is not an http(s):// or file:// URL: it names no host. {fix}")


def _read_lines(path: str, what: str) -> list[str]:
    if not os.path.isfile(path):
        _refuse(f"{what} file {path!r} does not exist on the host. Copy it there first (ansible.builtin.copy), then rerun.")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _refuse(f"{what} file {path!r} cannot be read as UTF-8 text: {exc}. Fix the file, then rerun.")


def lock_is_owned(path: str) -> bool:
    """A lock file may be overwritten when absent, or when its first line is the collection's (today's or an earlier one's)."""
    return _ownership.text_is_owned(path, rq.is_legacy_lock)


def import_check_of(params: dict[str, t.Any]) -> list[str]:
    """The option import_check normalized: ["auto"], ["off"] or module names. YAML reads an unquoted off or no as a
    boolean (the list option then holds "False"): that is off, and true or yes is auto."""
    value = [str(v) for v in params.get("import_check", ["auto"])]
    if not value:
        return ["off"]
    if len(value) == 1 and value[0].lower() in ("off", "false", "no"):
        return ["off"]
    if len(value) == 1 and value[0].lower() in ("auto", "true", "yes"):
        return ["auto"]
    return value


def check_options(params: dict[str, t.Any], fetch_wheel: t.Callable[[str, str], tuple[str | None, str]] | None = None) -> dict[str, t.Any]:
    """Every option, before anything is read from or changed on the host; returns the normalized values."""
    for key in _PATH_OPTIONS:
        value = params.get(key)
        if value is not None and any(c in str(value) for c in "\0\n\r"):
            _refuse(f"{key} holds a NUL byte or a line break. Give a plain absolute path.")
    for link in params["find_links"]:
        if any(c in str(link) for c in "\0\n\r"):
            _refuse("find_links holds an entry with a NUL byte or a line break. Give absolute directories or http(s)/file URLs.")
    tool_dir = _ownership.check_target(params["tool_dir"], "tool_dir", "/opt/mlhost/tools")
    path = _ownership.check_target(params["path"], "path", "/opt/envs/<name>", tool_dir)
    if os.path.lexists(path) and not _venv.is_owned_env(path):
        _venv.refuse_python_installation(path)
        # Not the collection's: never removed; replaced never either, so anything but a venv that may already meet the
        # request (read, then left alone) is refused here, before a command runs.
        if params["state"] == "absent":
            _venv.refuse_unowned_env(path, "remove")
        if not os.path.isfile(os.path.join(os.path.realpath(path), "pyvenv.cfg")):
            _venv.refuse_unowned_env(path, "replace")
    lock = None
    if params["lock_file"]:
        lock = params["lock_file"]
        if not os.path.isabs(lock):
            _refuse(f"lock_file {lock!r} must be an absolute path, such as /opt/envs/train.lock.")
        lock = os.path.normpath(lock)
        if not lock_is_owned(lock):
            _refuse(f"lock_file {lock!r} exists and was not written by the collection (its first line is not "
                    f"'{_ownership.TEXT_MARKER}...'), so it will not be overwritten. Choose another lock_file, or remove "
                    "the file if it is yours to replace.")
        if os.path.isdir(lock):
            _refuse(f"lock_file {lock!r} is a directory. Give the path of a file, such as /opt/envs/train.lock.")
        _ownership.check_target(lock, "lock_file", "/opt/envs/train.lock", tool_dir)
        if lock == path or lock.startswith(path + "/"):
            _refuse(f"lock_file {lock!r} is inside the environment {path}: it would be lost at the next rebuild. Keep it beside it.")
    mode = params["mode"]
    if mode is not None:
        if not re.fullmatch(r"0?[0-7]{3,4}", str(mode)):
            _refuse(f"mode {mode!r} is not an octal mode such as '0755'.")
        if int(mode, 8) & 0o002:
            _refuse(f"mode {mode!r} makes the environment world-writable: anyone could replace its code. Use 0755 or 0750.")
        if int(mode, 8) & 0o7000:
            _refuse(f"mode {mode!r} sets setuid, setgid or sticky bits on the environment. Use 0755 or 0750.")
    lines: dict[str, list[str]] = {"packages": list(params["packages"])}
    rq.check_syntax(params["packages"], "packages")
    for key in ("requirements", "constraints"):
        value = params[key]
        if value:
            if not os.path.isabs(value):
                _refuse(f"{key} {value!r} must be an absolute path of a file on the host.")
            lines[key] = _read_lines(value, key)
            rq.check_syntax(lines[key], value)
    if params["index_url"]:
        check_url(params["index_url"], "index_url")
    for url in params["extra_index_urls"]:
        check_url(url, "An extra_index_urls entry")
    check_url(params["torch_index_url"], "torch_index_url")
    for link in params["find_links"]:
        if link.startswith("/"):
            if not os.path.isdir(link):
                _refuse(f"find_links directory {link!r} does not exist on the host. Copy the wheels there first, or fix the path.")
        elif "://" in link:
            check_url(link, "A find_links entry")
        else:
            _refuse(f"find_links entry {mask_text(link)!r} must be an absolute directory or an http(s)/file URL.")
    if params["offline"]:
        if params["index_url"] or params["extra_index_urls"]:
            _refuse("offline: true installs with no index at all, and index_url or extra_index_urls is set too: the two "
                    "contradict each other. Drop the index options, or set offline: false.")
        if not params["find_links"]:
            _refuse("offline: true needs find_links: a local wheelhouse directory to install from (no index is used).")
    if params["ca_bundle"]:
        ca = params["ca_bundle"]
        if not os.path.isabs(ca) or not os.path.isfile(ca) or not os.access(ca, os.R_OK):
            _refuse(f"ca_bundle {ca!r} does not exist on the host or cannot be read. Copy the CA bundle there first "
                    "(for example /usr/local/share/ca-certificates/proxy.crt), or leave ca_bundle unset.")
    check = import_check_of(params)
    if len(check) > 1 and ("auto" in check or "off" in check):
        _refuse(f"import_check is auto, off, or a list of module names, not a mix: {', '.join(map(repr, check))}.")
    for mod in check:
        if mod not in ("auto", "off") and (len(mod) > 200 or not _venv.MODULE_NAME.fullmatch(mod)):
            _refuse(f"import_check entry {mask_text(mod)[:80]!r} is not a module name (dotted identifiers, such as torch or "
                    "google.protobuf). Use auto (each requested distribution's own module), off, or module names.")
    tag = params["torch_cuda"]
    if tag not in ("auto", "cpu", "none") and tag not in KNOWN_TORCH_TAGS:
        _refuse(f"torch_cuda {tag!r} is not valid: use auto, cpu, none, or a CUDA wheel tag PyTorch publishes "
                f"({', '.join(KNOWN_TORCH_TAGS)}).")
    if params["state"] == "present" and not params["packages"] and not params["requirements"]:
        _refuse("Nothing to install: give packages or requirements (an empty environment is state: present with a package list).")
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        if params[key]:
            try:
                lookup(params[key])
            except KeyError:
                _refuse(f"{key} {params[key]!r} does not exist on the host. Create it first, or leave {key} unset.")
    # Parsed with packaging here, before any command runs (the host's, the tool venv's, or pip's vendored copy).
    if params["state"] == "absent" and not rq.have_packaging():
        return {"path": path, "tool_dir": tool_dir, "lock": lock, "reqs": []}  # removing needs no parsing
    rq.load_packaging(_venv.tool_sites(_venv.tool_paths(tool_dir)["venv"]), fetch_wheel)
    reqs = rq.parse_lines(lines["packages"], "packages")
    if "requirements" in lines:
        reqs += rq.parse_lines(lines["requirements"], params["requirements"])
    if "constraints" in lines:
        rq.parse_lines(lines["constraints"], params["constraints"])
    return {"path": path, "tool_dir": tool_dir, "lock": lock, "reqs": reqs}


class PythonEnv(Worker):
    """One run of python_env against a host, through the one door ``host.runner``."""

    def __init__(self, host: Host, host_cuda: t.Callable[[], str | None] | None = None) -> None:
        super().__init__(host)
        self.p = self.params
        self._host_cuda = host_cuda
        # The installers (and the packaging wheel's fetch) trust the host's system store unless ca_bundle names another
        # bundle; check_options refuses a ca_bundle that is not there before anything is fetched.
        self.ca = self.p["ca_bundle"] or _venv.system_ca_bundle()
        self.tool = _venv.tool_paths(self.p["tool_dir"] or "/opt/mlhost/tools")
        self.work: dict[str, t.Any] = {}

    def host_cuda(self) -> str | None:
        if self._host_cuda is not None:
            return self._host_cuda()
        from ansible_collections.mlinfra.mlhost.plugins.module_utils._host import driver_cuda_level  # pylint: disable=import-outside-toplevel

        return driver_cuda_level(self.host.sysroot, lambda argv: self.runner.run(argv, check=False))

    # --- the interpreter ---------------------------------------------------
    def interpreter(self) -> tuple[str, str]:
        python = self.p["python"]
        path = python if python.startswith("/") else self.runner.find(python)
        if not path or not os.access(path, os.X_OK):
            package = python if python.startswith("python") else "python3"
            _refuse(
                f"python: Python interpreter {python!r} was not found on the host. Install it (Debian/Ubuntu: apt-get install "
                f"{package} python3-venv; RHEL: dnf install {package}), or give its absolute path."
            )
        result = self.runner.run([path, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], check=False)
        err = (result.err if result else "") or ""
        if result is not None and result.rc != 0 and "Unknown option: -I" in err:
            _refuse(f"python {python!r} ({path}) is Python 2: python_env needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+. "
                    "Give a Python 3 interpreter, such as python3 or /usr/bin/python3.11.")
        if result is None or result.rc != 0:
            _refuse(f"python {python!r} ({path}) does not run as a Python interpreter: {mask_text(err.strip()[-300:])}. "
                    "Give a working Python 3 interpreter.")
        version = result.out.strip()
        match = re.fullmatch(r"([0-9]+)\.([0-9]+)\.([0-9]+)", version)
        if not match or (int(match.group(1)), int(match.group(2))) < MIN_PYTHON:
            _refuse(f"python {python!r} ({path}) is Python {version or '(unknown)'}: python_env needs Python "
                    f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+. Give a newer interpreter.")
        return path, version

    # --- reading an environment --------------------------------------------
    def probe(self, path: str) -> dict[str, t.Any] | None:
        python = _venv.env_python(path)
        if not os.access(python, os.X_OK):
            return None
        result = self.runner.run([python, "-I", "-c", _venv.PROBE], check=False)
        if result is None or result.rc != 0:
            return None  # a broken env: rebuild it
        try:
            data = json.loads(result.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        data["packages"] = {rq.canonical(n): v for n, v in data["packages"].items()}
        return data

    # --- the request ---------------------------------------------------------
    def torch_index(self, reqs: list[t.Any]) -> str | None:
        names = {rq.canonical(r.name): r for r in reqs}
        if not any(n in names for n in TORCH_FAMILY) or self.p["torch_cuda"] == "none" or self.p["offline"]:
            return None
        tag = self.p["torch_cuda"]
        if tag == "auto":
            torch = names.get("torch")
            pinned = [s.version for s in (torch.specifier if torch else []) if s.operator in ("==", "===", "~=")]
            if not pinned:
                _refuse("torch_cuda: auto needs torch pinned (torch==2.5.1 or torch~=2.5.0) to pick its CUDA wheels; "
                        "pin it, or set torch_cuda to cpu or a tag such as cu124.")
            try:
                tag = torch_cuda_tag(pinned[0].replace(".*", ""), self.host_cuda())
            except ValueError as exc:
                _refuse(f"torch_cuda: auto: {exc}")
        return tag

    def fetch_wheel(self, name: str, sha256: str) -> tuple[str | None, str]:
        """A verified copy of the wheel ``name`` for the plan (``_venv.fetch_wheel``)."""
        return _venv.fetch_wheel(self.host, name, sha256, find_links=self.p["find_links"] or [], index_url=self.p["index_url"],
                                 offline=bool(self.p["offline"]), ca=self.ca)

    # --- the plan ----------------------------------------------------------------
    def plan(self) -> Plan:
        p = self.p
        checked = check_options(p, self.fetch_wheel)
        path, lock = checked["path"], checked["lock"]
        self.tool = _venv.tool_paths(checked["tool_dir"])
        base = {"env_path": path, "lock": lock if p["state"] == "present" else None, "action": "none",
                "added": {}, "removed": {}, "upgraded": {}, "downgraded": {}}
        self.work = {"path": path, "lock": lock}
        if p["state"] == "absent":
            if not os.path.lexists(path):
                return Plan(False, base)
            _venv.refuse_unowned_env(path, "remove")
            target = os.path.realpath(path) if os.path.islink(path) else None
            base["action"] = "remove"
            return Plan(True, base, diff={"before": f"{path} (environment)\n", "after": ""}, steps=[("remove", path, target)])

        python, python_version = self.interpreter()
        reqs = checked["reqs"]
        wanted_names = sorted({rq.canonical(r.name) for r in reqs})
        tag = self.torch_index(reqs)
        backend = p["backend"]
        have_uv = os.access(self.tool["uv"], os.X_OK)
        if backend == "auto":
            backend = "uv"
        base.update(backend=backend, python_version=python_version, torch_index=tag)

        exists = os.path.lexists(path)
        current = self.probe(path) if exists else None
        state = _venv.read_state(path) if current else None
        before = _user_packages(current["packages"], wanted_names) if current else {}
        same_python = current is not None and current["python"].rsplit(".", 1)[0] == python_version.rsplit(".", 1)[0]
        unmet = [r for r in reqs if not (current and rq.satisfied(r, current["packages"], current["markers"]))]
        dropped = sorted(set((state or {}).get("requested_names", [])) - set(wanted_names))
        base["installed"] = before
        self.work.update(before=before, python=python, reqs=reqs, names=wanted_names, tag=tag, backend=backend)

        if current and same_python and not unmet and not dropped:
            base["python_version"] = current["python"]
            text = self.lock_text(current["packages"], wanted_names)
            if lock and _files.differs(lock, text):
                old = (_files.read_bytes(lock) or b"").decode("utf-8", "replace")
                return Plan(True, base, diff={"before": old, "after": text, "before_header": lock, "after_header": lock},
                            steps=[("lock", lock, text)])
            return Plan(False, base)

        action = "create" if not exists else ("update" if current and same_python else "rebuild")
        if exists:
            _venv.refuse_unowned_env(path, "replace")
        unmet_names = {rq.canonical(r.name) for r in unmet}
        base.update(
            action=action,
            added={rq.canonical(r.name): "(new)" for r in reqs if rq.canonical(r.name) not in before},
            removed={n: before.get(n) for n in dropped},
            upgraded={rq.canonical(r.name): {"from": before[rq.canonical(r.name)], "to": str(r.specifier) or "(latest)"}
                      for r in reqs if rq.canonical(r.name) in before and rq.canonical(r.name) in unmet_names},
        )
        steps: list[t.Any] = []
        if backend == "uv" and not have_uv:
            steps.append(("tools", "uv"))
        steps.append(("build", action))
        if lock:
            steps.append(("lock", lock, None))
        after = {n: v for n, v in before.items() if n not in dropped and n not in unmet_names}
        after_text = "".join(f"{n}=={v}\n" for n, v in sorted(after.items()))
        after_text += "".join(f"{r}\n" for r in sorted(unmet, key=lambda r: rq.canonical(r.name)))
        diff = {"before": "".join(f"{n}=={v}\n" for n, v in sorted(before.items())), "after": after_text,
                "before_header": path, "after_header": f"{path} ({action})"}
        return Plan(True, base, diff=diff, steps=steps)

    # --- apply -----------------------------------------------------------------
    def apply(self, plan: Plan) -> dict[str, t.Any] | None:
        out: dict[str, t.Any] = {}
        for step in plan.steps:
            kind = step[0]
            if kind == "remove":
                self.remove(step[1], step[2])
            elif kind == "tools":
                out.update(self.ensure_tools(plan))
            elif kind == "build":
                out.update(self.rebuild())
            elif kind == "lock":
                text = step[2] if step[2] is not None else self.lock_text(self.work["after_packages"], self.work["names"])
                _files.write_if_changed(step[1], text)
        return out

    def remove(self, path: str, target: str | None) -> None:
        _venv.refuse_unowned_env(path, "remove")
        _venv.remove_tree(path)
        _venv.remove_tree(target)
        gens = _venv.generations_dir(path)
        if os.path.isdir(gens) and not os.listdir(gens):
            os.rmdir(gens)

    def ensure_tools(self, plan: Plan) -> dict[str, t.Any]:
        """Put uv (with packaging) into the tool venv; with backend auto, fall back to pip when that fails."""
        p = self.p
        wants = [f"packaging=={_venv.TOOL_PACKAGING_VERSION}", f"uv=={_venv.TOOL_UV_VERSION}"]
        try:
            _venv.ensure_tool_venv(self.runner, self.tool["venv"], wants, python=sys.executable, find_links=p["find_links"],
                                   offline=p["offline"], index_url=p["index_url"], extra_index_urls=p["extra_index_urls"],
                                   ca_bundle=self.ca)
        except ModuleError as exc:
            if exc.details.get("stage") == "install" and p["backend"] == "auto":
                plan.warnings.append("uv could not be installed into the tool venv; using pip. " + exc.msg)
                self.work["backend"] = "pip"
                return {"backend": "pip"}
            raise
        return {}

    def rebuild(self) -> dict[str, t.Any]:
        w = self.work
        path = w["path"]
        gen = _venv.new_generation(path)
        try:
            probed = self.build(gen, w["python"], w["backend"], w["reqs"], w["names"], w["tag"])
            _venv.write_state(gen, {"requested": [str(r) for r in w["reqs"]], "requested_names": w["names"],
                                    "backend": w["backend"], "python": probed["python"], "torch_index": w["tag"]})
            _ownership.write_marker(gen, MODULE, path=path)
            self.set_attributes(gen)
        except BaseException:
            _venv.remove_tree(gen)
            raise
        before = w["before"]
        previous = _venv.swap(path, gen)
        self.set_attributes(path, follow=False)
        if previous and (previous.startswith(_venv.generations_dir(path) + "/") or ".mlhost-replaced-" in previous):
            _venv.remove_tree(previous)
        after = _user_packages(probed["packages"], w["names"])
        w["after_packages"] = probed["packages"]
        result = rq.diff_installed(before, after)
        result.update(installed=after, python_version=probed["python"], generation=gen)
        return result

    def build(self, gen: str, python: str, backend: str, reqs: list[t.Any], names: list[str], tag: str | None) -> dict[str, t.Any]:
        p = self.p
        os.makedirs(os.path.dirname(gen), mode=0o755, exist_ok=True)
        extra = list(p["extra_index_urls"])
        if tag:
            extra.insert(0, f"{p['torch_index_url'].rstrip('/')}/{tag}")
        uv = self.tool["uv"]
        env = _venv.installer_env(backend, p["index_url"], extra, self.ca)
        self._must(_venv.venv_command(backend, python, gen, uv), "Creating the venv " + gen,
                   "Install python3-venv (Debian/Ubuntu) or the interpreter's venv module.", env)
        req_file = os.path.join(gen, "mlhost-requirements.txt")
        _files.atomic_write(req_file, "".join(f"{r}\n" for r in reqs), 0o600)
        argv = _venv.install_command(backend, gen, req_file, p["constraints"], p["find_links"], p["offline"], uv)
        result = self.runner.run(argv, check=False, env=env)
        if result is None or result.rc != 0:
            culprits = _venv.failing_requirement((result.err + result.out) if result else "", names)
            raise ModuleError(
                f"Installing into the new environment failed{' at ' + ', '.join(culprits) if culprits else ''}; "
                f"the environment at {p['path']} was left as it was. {backend} said: {mask_text(_venv.output_tail(result, 12))}",
                failing=culprits,
            )
        self.check_new_env(gen, backend, names, uv)
        _venv.clear_world_writable(gen)
        probed = self.probe(gen)
        if probed is None:
            raise ModuleError("The new environment does not answer its own probe; the old environment was kept.")
        return probed

    def check_new_env(self, gen: str, backend: str, names: list[str], uv: str | None) -> None:
        """Before the swap: the installer's dependency check, then the import check (option import_check)."""
        p = self.p
        check = import_check_of(p)
        if check == ["off"]:
            return
        kept = f"The environment at {p['path']} was left as it was"
        deps = self.runner.run(_venv.dependency_check_argv(backend, _venv.env_python(gen), uv), check=False)
        if deps is None or deps.rc != 0:
            raise ModuleError(
                f"The new environment installed but its dependencies are not consistent ({backend} check): "
                f"{mask_text(_venv.output_tail(deps, 12))}. {kept}. Pin versions that fit together, or set import_check: off.")
        argv = _venv.import_check_argv(_venv.env_python(gen), check, names)
        check = self.runner.run(argv, check=False)
        if check is None or check.rc != 0:
            raise ModuleError(f"The import check in the new environment did not run: {mask_text(_venv.output_tail(check))}; the old environment was kept.")
        imports = json.loads(check.out.strip().splitlines()[-1])
        if imports["failed"]:
            raise ModuleError(
                "The new environment installed but does not import: "
                + "; ".join(f"{k}: {v}" for k, v in imports["failed"].items())
                + f". {kept}. Fix the requirement, or name the modules to import in import_check (off skips the check).",
                failing=sorted(imports["failed"]),
            )

    def _must(self, argv: list[str], what: str, fix: str, env: dict[str, str] | None = None) -> t.Any:
        result = self.runner.run(argv, check=False, env=env)
        if result is None or result.rc != 0:
            raise ModuleError(f"{what} failed: {mask_text(_venv.output_tail(result))}. {fix}")
        return result

    def set_attributes(self, target: str, follow: bool = True) -> None:
        """owner, group and mode through ansible-core's file-attribute helpers (the tree below a generation; the link itself)."""
        module = self.host.module
        owner, group, mode = self.p["owner"], self.p["group"], self.p["mode"]
        if follow and mode:
            module.set_mode_if_different(target, mode, False)
        if not owner and not group:
            return
        paths = [target]
        if follow:
            paths = []
            for root, dirs, files in os.walk(target):
                paths.append(root)
                paths += [os.path.join(root, name) for name in dirs + files]
        for item in paths:
            if owner:
                module.set_owner_if_different(item, owner, False, expand=False)
            if group:
                module.set_group_if_different(item, group, False, expand=False)

    def lock_text(self, packages: dict[str, str], names: list[str]) -> str:
        return rq.lock_text(_user_packages(packages, names), f"python_env: exact pins of {self.work['path']}.")


def _user_packages(packages: dict[str, str], requested: list[str]) -> dict[str, str]:
    return {n: v for n, v in sorted(packages.items()) if n not in _venv.SEED_PACKAGES or n in requested}
