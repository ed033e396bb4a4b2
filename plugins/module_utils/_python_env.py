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
import hashlib
import json
import os
import pwd
import re
import secrets
import sys
import tempfile
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _progress, _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _torch_wheels
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import TORCH_CUDA_TAGS, TORCH_CUDA_TAGS_CHECKED, torch_cuda_tag
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_text
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Host, Plan, Worker

MODULE = "mlinfra.mlhost.python_env"
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
KNOWN_TORCH_TAGS = sorted({tag for tags in TORCH_CUDA_TAGS.values() for tag in tags})
MIN_PYTHON = (3, 8)
_NOTHING = " Nothing was changed."
# The interpreter's version (line 1), its PEP 508 marker environment (line 2, JSON) and the executable it runs as
# (line 3, JSON: a pyenv shim's real interpreter, which the builds then run without the shim), in one command.
INTERPRETER_PROBE = (
    "import sys; print('%d.%d.%d' % sys.version_info[:3])\n"
    "import json, os, platform\n"
    "print(json.dumps({'implementation_name': sys.implementation.name, 'implementation_version': '%d.%d.%d' % "
    "sys.implementation.version[:3], 'os_name': os.name, 'platform_machine': platform.machine(), "
    "'platform_python_implementation': platform.python_implementation(), 'platform_release': platform.release(), "
    "'platform_system': platform.system(), 'platform_version': platform.version(), 'python_full_version': "
    "platform.python_version(), 'python_version': '%d.%d' % sys.version_info[:2], 'sys_platform': sys.platform}))\n"
    "print(json.dumps(sys.executable or ''))"
)


def supported_python(version: str) -> bool:
    """True for a full version ('3.11.2') of a Python python_env builds with (MIN_PYTHON and later)."""
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)\.([0-9]+)", version)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= MIN_PYTHON


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


def _newer_cuda_tag(tag: t.Any) -> bool:
    """cu126, cu132: a cuXYZ of a CUDA release the data knows, or of one after its newest (cu127 is neither)."""
    if not isinstance(tag, str) or not re.fullmatch(r"cu[0-9]{3}", tag):
        return False
    cuda = _compat.tag_cuda(tag)
    return cuda in _compat.CUDA_MIN_DRIVER or _compat.cuda_newer_than_data(cuda)


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
    rq.check_syntax(params["packages"], "packages")
    files = read_request_files(params)
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
        if files.options["index_url"] or files.options["extra_index_urls"]:
            _refuse("offline: true installs with no index at all, and a requirements file names an index (--index-url or "
                    "--extra-index-url): the two contradict each other. Drop the file's index lines, or set offline: false.")
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
    if tag not in ("auto", "cpu", "none") and tag not in KNOWN_TORCH_TAGS and not _newer_cuda_tag(tag):
        _refuse(f"torch_cuda {tag!r} is not valid: use auto, cpu, none, or a CUDA wheel tag PyTorch publishes "
                f"({', '.join(KNOWN_TORCH_TAGS)}, or cuXYZ of a CUDA release newer than these).")
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
    reqs = rq.parse_lines(params["packages"], "packages")
    parsed = [(line, rq.parse_one(line.text, line.number, line.source)) for line in files.lines]
    reqs += [req for line, req in parsed if line.kind == "requirement"]
    return {"path": path, "tool_dir": tool_dir, "lock": lock, "reqs": reqs, "files": files, "parsed": parsed}


def read_request_files(params: dict[str, t.Any]) -> rq.FileRequest:
    """The requirements and constraints files as pip reads them (includes, hashes, the file's index options), their
    lines' syntax checked without packaging; the file's URLs checked, never shown unmasked."""
    files = rq.FileRequest()
    for key, kind in (("requirements", "requirement"), ("constraints", "constraint")):
        value = params[key]
        if value:
            if not os.path.isabs(value):
                _refuse(f"{key} {value!r} must be an absolute path of a file on the host.")
            if not os.path.isfile(value):
                _refuse(f"{key} file {value!r} does not exist on the host. Copy it there first (ansible.builtin.copy), then rerun.")
            rq.read_requirements_file(value, kind, files)
    for line in files.lines:
        rq.check_line_syntax(line.text, line.number, line.source)
    options = files.options
    for url in ([options["index_url"]] if options["index_url"] else []) + options["extra_index_urls"]:
        check_url(url, f"The index URL at {files.where.get(url, 'a requirements file')}")
    for link in options["find_links"]:
        where = files.where.get(link, "a requirements file")
        if "://" in link:
            check_url(link, f"The --find-links URL at {where}")
        elif not os.path.isdir(link) and not os.path.isfile(link):
            _refuse(f"The --find-links {mask_text(link)!r} at {where} is not a directory on the host (a relative one is "
                    "read beside the file). Copy the wheels there, or fix the line.")
    # uv reads these in a requirements file, warns that it ignores them, and installs something else than pip would.
    ignored = [name for name, key in (("--pre", "pre"), ("--prefer-binary", "prefer_binary"), ("--trusted-host", "trusted_hosts"))
               if files.options[key]]
    if ignored and params["backend"] in ("uv", "auto"):
        _refuse(f"{files.where[ignored[0]]}: uv ignores {ignored[0]} in a requirements file (it only warns), so the environment "
                "would not be what the file asks. Set backend: pip, or remove the line.")
    if files.hash_mode:
        if params["packages"]:
            _refuse("The requirements file is hash-locked (--hash lines: pip's require-hashes mode), and packages is set "
                    "too: every requirement then needs its hashes. Put those packages into the lock (uv pip compile "
                    "--generate-hashes, pip-compile --generate-hashes), or leave packages unset.")
        for line in files.lines:
            if line.kind == "requirement" and not line.hashes:
                _refuse(f"{line.source} line {line.number}: {mask_text(line.text)!r} has no --hash, and the requirements "
                        "are hash-locked (another line has one, or --require-hashes): pip refuses that. Regenerate the lock "
                        "with hashes for every line.")
    return files


REQUEST_VERSION = 1  # the identity's layout: a new layout reads as a changed request once


def request_identity(params: dict[str, t.Any], checked: dict[str, t.Any], tag: str | None, python_version: str) -> dict[str, t.Any]:
    """Everything the environment is made from, normalized: the requirement and constraint lines after the files'
    includes (extras, URL targets, markers, hashes; a local file target's sha256), the files' and the module's index
    and find-links options, the torch wheel index, the Python minor and the backend option. Its ``fingerprint`` is
    stored with the environment: any change to it is a change to the environment."""
    entries = [("requirement", req, ()) for req in rq.parse_lines(params["packages"], "packages")]
    entries += [(line.kind, req, line.hashes) for line, req in checked["parsed"]]
    lines = sorted([kind, rq.normal_form(req), list(hashes)] for kind, req, hashes in entries)
    local = {}
    for _kind, req, _hashes in entries:
        target = urllib.parse.unquote(req.url[len("file://"):]) if (req.url or "").startswith("file://") else ""
        if target and os.path.isfile(target):
            local[req.url] = _files.sha256_file(target)
    return {
        "layout": REQUEST_VERSION, "lines": lines, "local_files": local, "file_options": checked["files"].options,
        "index_url": params["index_url"], "extra_index_urls": list(params["extra_index_urls"]),
        "find_links": list(params["find_links"]), "offline": bool(params["offline"]),
        "torch_index": f"{params['torch_index_url'].rstrip('/')}/{tag}" if tag else None,
        "python": python_version.rsplit(".", 1)[0], "backend": params["backend"],
    }


def shown_request(params: dict[str, t.Any], checked: dict[str, t.Any]) -> list[str]:
    """The request as it may be shown (the plan's diff, the state file): lines and file options, credentials masked."""
    out = [mask_text(str(req)) for req in rq.parse_lines(params["packages"], "packages")]
    out += [mask_text(str(req)) + (" (constraint)" if line.kind == "constraint" else "") + (" (hashed)" if line.hashes else "")
            for line, req in checked["parsed"]]
    options = checked["files"].options
    out += [f"--index-url {mask_text(options['index_url'])}"] if options["index_url"] else []
    out += [f"--extra-index-url {mask_text(u)}" for u in options["extra_index_urls"]]
    out += [f"--find-links {mask_text(u)}" for u in options["find_links"]]
    return out


def _gpu_cc(gpu: dict[str, t.Any]) -> tuple[int, int] | None:
    """A host_facts GPU's compute capability ('8.6' -> (8, 6)), else its architecture's lowest, else None."""
    cap = gpu.get("compute_capability")
    match = re.fullmatch(r"([0-9]{1,2})\.([0-9])", cap) if isinstance(cap, str) else None
    if match:
        return int(match.group(1)), int(match.group(2))
    return _compat.ARCHITECTURE_MIN_CC.get(gpu.get("architecture") or "")


class PythonEnv(Worker):
    """One run of python_env against a host, through the one door ``host.runner``."""

    def __init__(self, host: Host, host_cuda: t.Callable[[], str | None] | None = None,
                 host_gpus: t.Callable[[], list[dict[str, t.Any]]] | None = None) -> None:
        super().__init__(host)
        self.p = self.params
        self._host_cuda = host_cuda
        self._host_gpus = host_gpus
        self.torch_notes: list[str] = []
        self.plan_notes: list[str] = []  # the plan's other warnings
        self.torch_choice: dict[str, t.Any] | None = None  # what torch_cuda auto chose, and from what (kept in the state)
        self.machine = os.uname().machine  # the wheels' platform: this host's (the module runs on it)
        # The installers (and the packaging wheel's fetch) trust the host's system store unless ca_bundle names another
        # bundle; check_options refuses a ca_bundle that is not there before anything is fetched.
        self.ca = self.p["ca_bundle"] or _venv.system_ca_bundle()
        self.tool = _venv.tool_paths(self.p["tool_dir"] or "/opt/mlhost/tools")
        self.work: dict[str, t.Any] = {}
        self.probed_before: dict[str, t.Any] | None = None  # the environment as the plan read it

    def host_cuda(self) -> str | None:
        if self._host_cuda is not None:
            return self._host_cuda()
        from ansible_collections.mlinfra.mlhost.plugins.module_utils._host import driver_cuda_level  # pylint: disable=import-outside-toplevel
        from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import parse_smi_cuda_version  # pylint: disable=import-outside-toplevel

        def run(argv: list[str]) -> t.Any:
            return self.runner.run(argv, check=False)

        level = driver_cuda_level(self.host.sysroot, run)
        if level and self.host.sysroot.live:
            # A driver newer than the data runs a newer CUDA than the table can say: nvidia-smi's banner tells.
            banner = run(["nvidia-smi"])
            smi = parse_smi_cuda_version(banner.out) if banner is not None and banner.rc == 0 else None
            if smi and _compat.version_tuple(smi) > _compat.version_tuple(level):
                return smi
        return level

    # --- the interpreter ---------------------------------------------------
    def find_interpreter(self) -> str:
        python = self.p["python"]
        path = python if python.startswith("/") else self.runner.find(python)
        if not path or not os.access(path, os.X_OK):
            package = python if python.startswith("python") else "python3"
            _refuse(
                f"python: Python interpreter {python!r} was not found on the host. Install it (Debian/Ubuntu: apt-get install "
                f"{package} python3-venv; RHEL: dnf install {package}), or give its absolute path."
            )
        return path

    def interpreter(self, path: str | None = None) -> tuple[str, str]:
        """(the interpreter to build with, its version): the probe's executable where it names one that runs (a pyenv
        shim's real interpreter: the builds skip the shim), else ``path``."""
        python = self.p["python"]
        path = path or self.find_interpreter()
        result = self.runner.run([path, "-I", "-c", INTERPRETER_PROBE], check=False)
        err = (result.err if result else "") or ""
        if result is not None and result.rc != 0 and "Unknown option: -I" in err:
            _refuse(f"python {python!r} ({path}) is Python 2: python_env needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+. "
                    "Give a Python 3 interpreter, such as python3 or /usr/bin/python3.11.")
        if result is None or result.rc != 0:
            _refuse(f"python {python!r} ({path}) does not run as a Python interpreter: {mask_text(err.strip()[-300:])}. "
                    "Give a working Python 3 interpreter.")
        lines = result.out.strip().splitlines() or [""]
        version = lines[0].strip()
        try:  # the marker environment of a new environment's interpreter: the plan evaluates markers with it
            self.target_markers = json.loads(lines[1]) if len(lines) > 1 else None
        except ValueError:
            self.target_markers = None
        if not supported_python(version):
            _refuse(f"python {python!r} ({path}) is Python {version or '(unknown)'}: python_env needs Python "
                    f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+. Give a newer interpreter.")
        try:
            executable = json.loads(lines[2]) if len(lines) > 2 else ""
        except ValueError:
            executable = ""
        if isinstance(executable, str) and executable.startswith("/") and os.access(executable, os.X_OK):
            return executable, version
        return path, version

    @staticmethod
    def same_interpreter(python: str, env: str) -> bool:
        """True when the environment's interpreter is the very file ``python`` is (a venv's bin/python links to it):
        the environment's own probe then answers the interpreter's version and markers, and the interpreter's probe is
        not run. A shim (a script that picks an interpreter when it runs) never is."""
        try:
            return os.path.samefile(os.path.realpath(python), os.path.realpath(_venv.env_python(env)))
        except OSError:
            return False

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
    def torch_index(self, reqs: list[t.Any], python_version: str) -> str | None:
        """The PyTorch build (cpu, cuXYZ) to install from, or None (no torch asked, torch_cuda none, or offline: the
        wheelhouse decides). auto: cpu without a driver (nothing is fetched); else the builds the index has for the
        pinned torch, the newest the driver runs and the oldest GPU has kernels in (``_torch_wheels.choose``)."""
        names = {rq.canonical(r.name): r for r in reqs}
        if not any(n in names for n in TORCH_FAMILY) or self.p["torch_cuda"] == "none" or self.p["offline"]:
            return None
        tag = self.p["torch_cuda"]
        if tag != "auto":
            return tag
        torch = names.get("torch")
        pinned = [s.version for s in (torch.specifier if torch else []) if s.operator in ("==", "===", "~=")]
        if not pinned:
            _refuse("torch_cuda: auto needs torch pinned (torch==2.5.1 or torch~=2.5.0) to pick its CUDA wheels; "
                    "pin it, or set torch_cuda to cpu or a tag such as cu124.")
        label = _torch_wheels.installed_label(pinned[0])
        if label:
            return label  # torch==2.5.1+cu124 names its build itself
        cuda = self.host_cuda()
        if not cuda:
            return "cpu"
        version = pinned[0].replace(".*", "")
        # The environment records what its build was chosen from: the same inputs give the same build, with no fetch
        # (an unchanged rerun sends nothing over the network). Another driver level, GPU, torch pin, Python, machine
        # or index is asked again.
        inputs = self.torch_inputs(torch.specifier, python_version, cuda)
        recorded = (_venv.read_state(self.work["path"]) or {}).get("torch_choice") if os.path.lexists(self.work["path"]) else None
        if isinstance(recorded, dict) and recorded.get("inputs") == inputs and isinstance(recorded.get("tag"), str):
            self.torch_choice = recorded
            return recorded["tag"]
        chosen = self.torch_index_read(torch, version, python_version, cuda)
        self.torch_choice = {"inputs": inputs, "tag": chosen}
        return chosen

    def torch_inputs(self, specifier: t.Any, python_version: str, cuda: str) -> dict[str, t.Any]:
        """What torch_cuda auto's choice depends on (the index URL as a digest: it may carry a token)."""
        min_cc = self.host_min_cc()
        return {"torch": str(specifier), "python": "cp" + "".join(python_version.split(".")[:2]), "machine": self.machine,
                "cuda": cuda, "min_cc": list(min_cc) if min_cc else None,
                "index": hashlib.sha256(self.p["torch_index_url"].encode("utf-8", "surrogateescape")).hexdigest()}

    def torch_index_read(self, torch: t.Any, version: str, python_version: str, cuda: str) -> str:
        """torch_cuda auto's build, read from the index (or, when it cannot be read, the dated table)."""
        found, read = self.torch_builds(torch.specifier, python_version, cuda)
        if not read:
            return self.torch_tag_from_table(version, cuda)
        best = _torch_wheels.newest(found)
        where = f"{mask_text(self.p['torch_index_url'])} ({', '.join(read)})"
        python_tag = "cp" + "".join(python_version.split(".")[:2])
        if best is None:
            _refuse(f"torch_cuda: auto: the PyTorch index {where} has no torch {torch.specifier} wheel for {python_tag} on "
                    f"Linux {self.machine}. Pin a torch release that has one for this Python, or set torch_cuda.")
        min_cc = self.host_min_cc()
        chosen, passed = _torch_wheels.choose(best[0], best[1], cuda, min_cc)
        if chosen is None:
            _refuse(f"torch_cuda: auto: torch {best[0]} on {where} has builds {', '.join(sorted(best[1]))}, and none runs on "
                    f"this host: {'; '.join(passed)}. Pin a torch release with a build that fits, or set torch_cuda.")
        self.torch_notes = [f"torch_cuda: auto took {chosen} for torch {best[0]}: {note}" for note in passed if "no kernels" in note]
        return chosen

    def torch_builds(self, specifier: t.Any, python_version: str, cuda: str) -> tuple[dict[str, set[str]], list[str]]:
        """({version: builds}, the pages read) for the pinned torch on this Python and machine: the page of all builds
        (``<torch_index_url>/torch/``), else (a mirror of some builds only) each ``<tag>/torch/`` page the driver could
        run, newest first, until one holds a build of it."""
        base = self.p["torch_index_url"].rstrip("/")
        python_tag = "cp" + "".join(python_version.split(".")[:2])
        machine = self.machine
        text, reached = self.read_simple_page(f"{base}/torch/")
        if text is not None:
            found = _torch_wheels.builds(_torch_wheels.page_files(text), specifier, python_tag, machine)
            if found:
                return found, ["torch/"]
        read: list[str] = ["torch/"] if text is not None else []
        found: dict[str, set[str]] = {}
        for tag in _torch_wheels.candidate_tags(cuda) + ["cpu"]:
            if not reached:
                break  # no answer at all (not a 404): the other pages would only wait as long
            text, reached = self.read_simple_page(f"{base}/{tag}/torch/")
            if text is None:
                continue
            read.append(f"{tag}/torch/")
            for version, tags in _torch_wheels.builds(_torch_wheels.page_files(text), specifier, python_tag, machine, tag).items():
                found.setdefault(version, set()).update(tags)
            best = _torch_wheels.newest(found)
            if best and _torch_wheels.choose(best[0], best[1] - {"cpu"}, cuda, self.host_min_cc())[0]:
                break  # the newest build that fits: older tags cannot win
        return found, read

    def read_simple_page(self, url: str) -> tuple[str | None, bool]:
        """(a simple page's text or None, whether the index answered at all: a 404 is an answer, a refused or timed-out
        connection is not). file:// is read directly (a directory's index.html)."""
        if url.startswith("file://"):
            path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
            path = os.path.join(path, "index.html") if os.path.isdir(path) else path
            data = _files.read_bytes(path)
            return (None if data is None else data.decode("utf-8", "replace")), True
        try:
            return self.host.fetch(url, timeout=60, ca_path=self.ca).read().decode("utf-8", "replace"), True
        except ModuleError as exc:
            status = re.search(r"HTTP status ([0-9]+)", exc.msg)
            return None, bool(status and 400 <= int(status.group(1)) < 500)

    def torch_tag_from_table(self, version: str, cuda: str) -> str:
        """The index could not be read: the dated table of _compat when it knows the release, else a refusal."""
        base = mask_text(self.p["torch_index_url"])
        try:
            tag = torch_cuda_tag(version, cuda)
        except ValueError:
            _refuse(f"torch_cuda: auto: the PyTorch index {base} could not be read (neither torch/ nor a <tag>/torch/ page "
                    f"answered), and torch {version} is newer than the offline table (checked {TORCH_CUDA_TAGS_CHECKED}). "
                    "Set torch_index_url to a reachable mirror (file:// works), or set torch_cuda to cpu or a tag such as cu128.")
        floor = _compat.torch_build_min_cc(version, tag) if tag != "cpu" else None
        min_cc = self.host_min_cc()
        if floor and min_cc is not None and min_cc < floor:
            _refuse(f"torch_cuda: auto: the PyTorch index {base} could not be read, and the table's choice {tag} for torch "
                    f"{version} has no kernels for this host's compute capability {min_cc[0]}.{min_cc[1]}. Set torch_cuda.")
        self.torch_notes = [f"the PyTorch index {base} could not be read: {tag} was taken from the table of torch builds "
                            f"checked {TORCH_CUDA_TAGS_CHECKED}"]
        return tag

    def host_min_cc(self) -> tuple[int, int] | None:
        """The lowest compute capability among the host's NVIDIA GPUs: each GPU's own (host_facts' ``compute_capability``,
        from _gpu_ids' table), else the lowest of its architecture (None: none known)."""
        ccs = [_gpu_cc(g) for g in self.host_gpus()]
        known = [cc for cc in ccs if cc is not None]
        return min(known) if known else None

    def host_gpus(self) -> list[dict[str, t.Any]]:
        if self._host_gpus is not None:
            return self._host_gpus()
        from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia import pci_gpus  # pylint: disable=import-outside-toplevel

        return pci_gpus(self.host.sysroot)

    def fetch_wheel(self, name: str, sha256: str) -> tuple[str | None, str]:
        """A verified copy of the wheel ``name`` for the plan (``_venv.fetch_wheel``)."""
        return _venv.fetch_wheel(self.host, name, sha256, find_links=self.p["find_links"] or [], index_url=self.p["index_url"],
                                 offline=bool(self.p["offline"]), ca=self.ca)

    # --- the plan ----------------------------------------------------------------
    def plan(self) -> Plan:
        plan = self._plan()
        plan.warnings.extend(self.torch_notes + self.plan_notes)
        return plan

    def _plan(self) -> Plan:
        p = self.p
        checked = check_options(p, self.fetch_wheel)
        path, lock = checked["path"], checked["lock"]
        self.tool = _venv.tool_paths(checked["tool_dir"])
        base = {"env_path": path, "lock": lock if p["state"] == "present" else None, "action": "none",
                "added": {}, "removed": {}, "upgraded": {}, "downgraded": {}, "reasons": []}
        self.work = {"path": path, "lock": lock}
        if p["state"] == "absent":
            if not os.path.lexists(path):
                return Plan(False, base)
            _venv.refuse_unowned_env(path, "remove")
            target = os.path.realpath(path) if os.path.islink(path) else None
            base["action"] = "remove"
            return Plan(True, base, diff={"before": f"{path} (environment)\n", "after": ""}, steps=[("remove", path, target)])

        # An existing environment whose interpreter is this very interpreter answers for both in one probe; else (a new
        # environment, a shim, another interpreter, an environment that does not answer) the interpreter is probed too.
        python = self.find_interpreter()
        exists = os.path.lexists(path)
        current = self.probe(path) if exists else None
        version = (current or {}).get("python") or ""
        if current and self.same_interpreter(python, path) and supported_python(version):
            python_version = version
        else:
            python, python_version = self.interpreter(python)
        reqs = checked["reqs"]
        wanted_names = sorted({rq.canonical(r.name) for r in reqs})
        tag = self.torch_index(reqs, python_version)
        backend = p["backend"]
        have_uv = os.access(self.tool["uv"], os.X_OK)
        if backend == "auto":
            backend = "uv"
        base.update(backend=backend, python_version=python_version, torch_index=tag)

        state = (_venv.read_state(path) or {}) if current else {}
        before = _user_packages(current["packages"], wanted_names) if current else {}
        same_python = current is not None and current["python"].rsplit(".", 1)[0] == python_version.rsplit(".", 1)[0]
        markers = current["markers"] if current else getattr(self, "target_markers", None)
        unmet = [r for r in reqs if not (current and rq.satisfied(r, current["packages"], markers))]
        dropped = sorted(set(state.get("requested_names", [])) - set(wanted_names))
        if current and tag:  # another torch build (2.5.1+cpu installed, cu124 chosen) is a change too
            unmet += [r for r in reqs if r not in unmet and _torch_build_differs(current["packages"].get(rq.canonical(r.name)), r, tag)]
        salt = state.get("request_salt") or secrets.token_hex(16)
        request = {"sha256": rq.fingerprint(request_identity(p, checked, tag, python_version), salt), "salt": salt,
                   "shown": shown_request(p, checked)}
        # An environment the collection did not make is never replaced: it is read, and left alone when it meets the
        # request by name and version (what it was made from is not known).
        reasons = self.reasons(current, state, request["sha256"]) if current and _venv.is_owned_env(path) else []
        base["installed"] = before
        self.work.update(before=before, python=python, reqs=reqs, names=wanted_names, tag=tag, backend=backend,
                         request=request, files=checked["files"])

        if current and same_python and not unmet and not dropped and not reasons:
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
        if not exists:
            reasons = ["a new environment"]
        elif current is None:
            reasons = ["the environment does not answer its own probe (broken)"]
        elif not same_python:
            reasons = reasons + [f"the environment has Python {current['python']}, the interpreter is {python_version}"]
        self.work["action"], self.probed_before = action, current
        base.update(action=action, reasons=reasons, **planned_changes(reqs, unmet, before, dropped, markers))
        resolved = None
        if self.host.check_mode or self.host.diff_mode:  # a real run reports what it installed; the plan resolves
            resolved, base["resolution"] = self.resolve(python, backend, tag, path if current and same_python else None)
        if resolved is not None:
            base.update(rq.diff_installed(before, _user_packages(resolved, wanted_names)))
        steps: list[t.Any] = []
        if backend == "uv" and not have_uv:
            self.work["tool_pip_wheel"] = self.pip_wheel_needed(self.tool["venv"], "the tool venv (uv)")
            steps.append(("tools", "uv"))
        if backend == "pip" and not rq._pip_wheels():  # no ensurepip: the env is made --without-pip, pip from the wheel
            self.work["env_pip_wheel"] = self.pip_wheel_needed(None, f"the environment's pip ({path})")
        steps.append(("build", action))
        if lock:
            steps.append(("lock", lock, None))
        return Plan(True, base, diff=plan_diff(path, action, state, request, before, unmet, dropped, resolved), steps=steps)

    def resolve(self, python: str, backend: str, tag: str | None, env: str | None) -> tuple[dict[str, str] | None, str]:
        """The installer's own resolution of the whole request for the target interpreter (markers, extras, constraints,
        includes, index options, the torch build): ({canonical name: version}, how), or (None, why not). uv's
        ``uv pip compile`` (the tool venv's uv); with the pip backend, the environment's own pip
        (``pip install --dry-run --ignore-installed --report -``). A request the installer cannot resolve is refused
        here, before anything changes."""
        p = self.p
        extra = list(p["extra_index_urls"])
        if tag:
            extra.insert(0, f"{p['torch_index_url'].rstrip('/')}/{tag}")
        env_vars = _venv.installer_env(backend, p["index_url"], extra, self.ca)
        files = []
        if p["packages"]:
            files.append(os.path.join(getattr(self.host.module, "tmpdir", None) or tempfile.gettempdir(),
                                      "mlhost-plan-requirements.txt"))
            _files.atomic_write(files[0], "".join(f"{r}\n" for r in rq.parse_lines(p["packages"], "packages")), 0o600)
        if p["requirements"]:
            files.append(p["requirements"])
        try:
            if backend == "uv":
                if not os.access(self.tool["uv"], os.X_OK):
                    return None, "not resolved: uv is not in the tool venv yet (the real run installs it first)"
                how = "uv pip compile"
                argv = [self.tool["uv"], "pip", "compile", "--no-config", "--python", python, "-q", "--no-header",
                        "--no-annotate"] + files
            else:
                env_python = _venv.env_python(env) if env else None
                if not env_python or not _venv.tool_has(env, "pip"):
                    return None, "not resolved: pip resolves in the environment's own pip, and there is none yet"
                how = "pip install --dry-run --report"
                argv = [env_python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                        "--disable-pip-version-check", "--report", "-"]
                for name in files:
                    argv += ["-r", name]
            if p["constraints"]:
                argv += ["-c", p["constraints"]]
            for link in p["find_links"]:
                argv += ["--find-links", link]
            if p["offline"]:
                argv.append("--no-index")
            result = self.runner.run(argv, check=False, env=env_vars)
        finally:
            if p["packages"] and os.path.exists(files[0]):
                os.unlink(files[0])
        if result is None or result.rc != 0:
            _refuse(f"The request cannot be resolved for Python at {python} ({how}): "
                    f"{mask_text(_venv.output_tail(result, 12))}. Fix the requirements (versions that exist and fit "
                    "together, for this Python), or the index options; nothing was changed.")
        try:
            found = _resolved_pip(result.out) if backend != "uv" else _resolved_uv(result.out)
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"not resolved: {how} printed what the module cannot read ({exc})"
        return found, how

    def reasons(self, current: dict[str, t.Any], state: dict[str, t.Any], sha256: str) -> list[str]:
        """Why an environment that may meet every requirement by name and version is still not what was asked."""
        if not state.get("request_sha256"):
            return ["the environment was made before python_env recorded its request: rebuilt once to record it"]
        out = []
        if state["request_sha256"] != sha256:
            out.append("the request changed (requirements, extras, URLs, constraints, index options, torch index, "
                       "Python or backend)")
        if state.get("installed") != current["packages"]:
            out.append("the installed packages differ from what the environment was built with (changed outside "
                       "python_env)")
        return out

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

    def pip_wheel_needed(self, venv: str | None, what: str) -> str | None:
        """The pip wheel that makes ``venv`` (None: a new pip-backend env) without ensurepip; None where the venv exists
        with its own pip, or where no wheel can be had: then ``python -m venv`` (ensurepip) is used, which an earlier
        step may still provide (ml_host's build tools install python3-venv after its validate phase planned this), and
        whose failure names both fixes. The plan says so in a warning."""
        if venv and _venv.has_own_pip(venv):
            return None
        wheel, tried = _venv.pip_wheel_for(self.fetch_wheel)
        if wheel:
            return wheel
        self.plan_notes.append(
            f"{what}: this host has no pip wheel (no python3-venv yet) and {_venv.PIP_WHEEL} could not be had "
            f"({mask_text(tried)}); the venv is made with ensurepip, which needs python3-venv by then. Put that wheel "
            f"(sha256 {_venv.PIP_WHEEL_SHA256}) in a find_links directory to need neither.")
        return None

    def ensure_tools(self, plan: Plan) -> dict[str, t.Any]:
        """Put uv (with packaging) into the tool venv; with backend auto, fall back to pip when that fails."""
        p = self.p
        wants = [f"packaging=={_venv.TOOL_PACKAGING_VERSION}", f"uv=={_venv.TOOL_UV_VERSION}"]
        try:
            _venv.ensure_tool_venv(self.runner, self.tool["venv"], wants, python=sys.executable, find_links=p["find_links"],
                                   offline=p["offline"], index_url=p["index_url"], extra_index_urls=p["extra_index_urls"],
                                   ca_bundle=self.ca, pip_wheel=self.work.get("tool_pip_wheel"))
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
            _venv.write_state(gen, {"requested": [mask_text(str(r)) for r in w["reqs"]], "requested_names": w["names"],
                                    "backend": w["backend"], "python": probed["python"], "torch_index": w["tag"],
                                    "request_sha256": w["request"]["sha256"], "request_salt": w["request"]["salt"],
                                    "request": w["request"]["shown"], "installed": probed["packages"],
                                    "torch_choice": self.torch_choice})
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
        wheel = self.work.get("env_pip_wheel") if backend == "pip" else None
        venv_argv = _venv.venv_command(backend, python, gen, uv)
        self._must(venv_argv[:-1] + (["--without-pip"] if wheel else []) + venv_argv[-1:], "Creating the venv " + gen,
                   "Install python3-venv (Debian/Ubuntu) or the interpreter's venv module.", env)
        if wheel:  # pip into the new env from the verified wheel, run as a zipapp
            self._must([_venv.env_python(gen), os.path.join(wheel, "pip"), "install", "-q", "--disable-pip-version-check",
                        "--no-index", wheel], "Installing pip into the new environment " + gen,
                       f"Check that {wheel} is a pip wheel.")
        # The module's packages go into a file of the generation; the requirements file is handed over as it is (the
        # installer reads its includes, hashes and index lines itself, relative to where it lies).
        req_files = []
        if p["packages"]:
            req_files.append(os.path.join(gen, "mlhost-requirements.txt"))
            _files.atomic_write(req_files[0], "".join(f"{r}\n" for r in rq.parse_lines(p["packages"], "packages")), 0o600)
        if p["requirements"]:
            req_files.append(p["requirements"])
        argv = _venv.install_command(backend, gen, req_files, p["constraints"], p["find_links"], p["offline"], uv,
                                     require_hashes=self.work["files"].hash_mode)
        progress = _progress.progress_path() if backend == "pip" else None
        if progress:  # an async run with progress (_progress.py): pip's own log is what the poller reads
            argv = argv + ["--log", progress]
        result = self.runner.run(argv, check=False, env=env)
        if result is None or result.rc != 0:
            culprits = _venv.failing_requirement((result.err + result.out) if result else "", names)
            raise ModuleError(
                f"Installing into the new environment failed{' at ' + ', '.join(culprits) if culprits else ''}; "
                f"the environment at {p['path']} was left as it was. {backend} said: {mask_text(_venv.output_tail(result, 12))}",
                failing=culprits,
            )
        probed = self.check_new_env(gen, backend, names, uv)
        _venv.clear_world_writable(gen)
        return probed

    def import_baseline(self) -> dict[str, t.Any] | None:
        """The working environment as the plan read it, on an update (its Python and packages): the import check then
        imports only the requested distributions that are new or whose version moved, when the new generation has the
        same Python minor (the others are the same wheels, and the installer's dependency check still covers the whole
        set); None for a new environment or a rebuild (every requested one is imported)."""
        old = self.probed_before
        return old if self.work.get("action") == "update" and old else None

    def check_new_env(self, gen: str, backend: str, names: list[str], uv: str | None) -> dict[str, t.Any]:
        """Before the swap, in one start of the new interpreter: its probe, then the import check (option import_check);
        the installer's dependency check is judged before the import check's result. Returns the probe."""
        p = self.p
        check = import_check_of(p)
        env_python = _venv.env_python(gen)
        ran = self.runner.run(_venv.new_env_check_argv(env_python, check, names, self.import_baseline()), check=False)
        probed, imports = _venv.read_new_env_check(ran.out if ran is not None else "")
        if probed is None:
            raise ModuleError("The new environment does not answer its own probe; the old environment was kept.")
        probed["packages"] = {rq.canonical(n): v for n, v in probed["packages"].items()}
        if check == ["off"]:
            return probed
        kept = f"The environment at {p['path']} was left as it was"
        deps = self.runner.run(_venv.dependency_check_argv(backend, env_python, uv), check=False)
        if deps is None or deps.rc != 0:
            raise ModuleError(
                f"The new environment installed but its dependencies are not consistent ({backend} check): "
                f"{mask_text(_venv.output_tail(deps, 12))}. {kept}. Pin versions that fit together, or set import_check: off.")
        if ran.rc != 0 or imports is None:
            raise ModuleError(f"The import check in the new environment did not run: {mask_text(_venv.output_tail(ran))}; the old environment was kept.")
        if imports["failed"]:
            raise ModuleError(
                "The new environment installed but does not import: "
                + "; ".join(f"{k}: {v}" for k, v in imports["failed"].items())
                + f". {kept}. Fix the requirement, or name the modules to import in import_check (off skips the check).",
                failing=sorted(imports["failed"]),
            )
        return probed

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


def _torch_build_differs(installed: str | None, req: t.Any, tag: str) -> bool:
    """Is ``req`` (a torch-family requirement) installed from another build than ``tag`` (its local label)?"""
    if installed is None or rq.canonical(req.name) not in TORCH_FAMILY:
        return False
    return _torch_wheels.installed_label(installed) != tag


def planned_changes(reqs: list[t.Any], unmet: list[t.Any], before: dict[str, str], dropped: list[str],
                    markers: dict[str, str] | None) -> dict[str, t.Any]:
    """The plan's added / removed / upgraded / downgraded, the requests whose marker does not hold for the target left
    out, a clause that excludes the installed version from above counted as a downgrade."""
    out: dict[str, t.Any] = {"added": {}, "removed": {n: before.get(n) for n in dropped}, "upgraded": {}, "downgraded": {}}
    for req in reqs:
        name = rq.canonical(req.name)
        if not rq.applies(req, markers):
            continue
        if name not in before:
            out["added"][name] = "(new)"
        elif req in unmet:
            out[rq.direction(req, before[name])][name] = {"from": before[name], "to": str(req.specifier) or "(latest)"}
    return out


def _resolved_uv(text: str) -> dict[str, str]:
    """``uv pip compile`` output: ``name==version`` lines, ``name @ URL`` for direct references (the version from a
    wheel's file name, else the URL, masked), hash continuation lines and comments skipped."""
    out = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith(("#", "--")):
            continue
        if " @ " in line:
            name, url = (part.strip() for part in line.split(" @ ", 1))
            wheel = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
            parts = wheel.split("-")
            out[rq.canonical(name.split("[", 1)[0])] = parts[1] if wheel.endswith(".whl") and len(parts) >= 5 else "@ " + mask_text(url)
        elif "==" in line:
            name, version = line.split("==", 1)
            out[rq.canonical(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
        else:
            raise ValueError(f"an unexpected line {mask_text(line)!r}")
    return out


def _resolved_pip(text: str) -> dict[str, str]:
    """pip's installation report (``--report -``, format 1): every package it would install, name and version."""
    start = text.find("{")
    report = json.loads(text[start:] if start >= 0 else text)
    return {rq.canonical(item["metadata"]["name"]): str(item["metadata"]["version"]) for item in report["install"]}


def plan_diff(path: str, action: str, state: dict[str, t.Any], request: dict[str, t.Any], before: dict[str, str],
              unmet: list[t.Any], dropped: list[str], resolved: dict[str, str] | None = None) -> dict[str, str]:
    """The request recorded with the environment and the installed set, before; the request asked and the planned
    set, after (credentials masked). Any change of the request shows, even where no version moves."""
    unmet_names = {rq.canonical(r.name) for r in unmet}
    after = {n: v for n, v in before.items() if n not in dropped and n not in unmet_names}
    old_sha = state.get("request_sha256")
    before_text = (f"# request {old_sha[:16]}\n" + "".join(f"{line}\n" for line in state.get("request", []))
                   if old_sha else "# request (not recorded)\n" if state else "")
    before_text += ("# packages\n" if state else "") + "".join(f"{n}=={v}\n" for n, v in sorted(before.items()))
    after_text = f"# request {request['sha256'][:16]}\n" + "".join(f"{line}\n" for line in request["shown"])
    if resolved is not None:  # the installer's resolution: the whole set the real run installs
        after_text += "# packages (resolved)\n" + "".join(f"{n}=={v}\n" for n, v in sorted(resolved.items())
                                                          if n not in _venv.SEED_PACKAGES)
        return {"before": before_text, "after": after_text, "before_header": path, "after_header": f"{path} ({action})"}
    after_text += "# packages\n" + "".join(f"{n}=={v}\n" for n, v in sorted(after.items()))
    after_text += "".join(f"{mask_text(str(r))}\n" for r in sorted(unmet, key=lambda r: rq.canonical(r.name)))
    return {"before": before_text, "after": after_text, "before_header": path, "after_header": f"{path} ({action})"}


def _user_packages(packages: dict[str, str], requested: list[str]) -> dict[str, str]:
    return {n: v for n, v in sorted(packages.items()) if n not in _venv.SEED_PACKAGES or n in requested}
