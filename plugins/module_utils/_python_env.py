# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The python_env module's logic: validate, compare, build beside, swap.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import glob
import grp
import json
import os
import pwd
import re
import sys
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import torch_cuda_tag
from ansible_collections.mlinfra.mlhost.plugins.module_utils._venv import EnvError

TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
_URL = re.compile(r"^(https?|file)://\S+$")


def validate(params: dict[str, t.Any]) -> None:
    """Refuse bad input before anything is read from or changed on the host."""
    _venv.validate_path(params["path"])
    _venv.refuse_python_installation(params["path"])
    if params["lock_file"]:
        if not os.path.isabs(params["lock_file"]):
            raise EnvError(f"lock_file {params['lock_file']!r} must be an absolute path.")
    if params["mode"] is not None and re.fullmatch(r"0?[0-7]{3,4}", params["mode"]) and int(params["mode"], 8) & 0o002:
        raise EnvError(f"mode {params['mode']!r} makes the environment world-writable: anyone could replace its code. Use 0755 or 0750.")
    rq.check_syntax(params["packages"], "packages")
    for key in ("requirements", "constraints"):
        value = params[key]
        if value and not os.path.isfile(value):
            raise EnvError(f"{key} file {value!r} does not exist on the host. Copy it there first (ansible.builtin.copy), then rerun.")
        if value:
            try:
                with open(value, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise EnvError(f"{key} file {value!r} cannot be read as UTF-8 text: {exc}. Fix the file, then rerun.") from exc
            rq.check_syntax(text.splitlines(), value)
    for url in ([params["index_url"]] if params["index_url"] else []) + params["extra_index_urls"]:
        if not _URL.match(url):
            raise EnvError("An index URL is not an http(s):// or file:// URL. Give the index's full URL (its value is not shown: it may hold a token).")
    for link in params["find_links"]:
        if not (link.startswith("/") or _URL.match(link)):
            raise EnvError(f"find_links entry {link!r} must be an absolute directory or an http(s)/file URL.")
        if link.startswith("/") and not os.path.isdir(link):
            raise EnvError(f"find_links directory {link!r} does not exist on the host.")
    if params["offline"] and not params["find_links"]:
        raise EnvError("offline: true needs find_links: a local wheelhouse directory to install from (no index is used).")
    tag = params["torch_cuda"]
    if not (tag in ("auto", "cpu", "none") or re.fullmatch(r"cu\d{3}", tag)):
        raise EnvError(f"torch_cuda {tag!r} is not valid: use auto, cpu, none, or a CUDA wheel tag such as cu124.")
    if params["state"] == "present" and not params["packages"] and not params["requirements"]:
        raise EnvError("Nothing to install: give packages or requirements (an empty environment is state: present with a package list).")
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        if params[key]:
            try:
                lookup(params[key])
            except KeyError as exc:
                raise EnvError(f"{key} {params[key]!r} does not exist on the host. Create it first, or leave {key} unset.") from exc


class PythonEnv:
    """One run of python_env against a host, through the one door ``runner``."""

    def __init__(self, params: dict[str, t.Any], runner: t.Any, check_mode: bool, host_cuda: t.Callable[[], str | None]) -> None:
        self.p = params
        self.runner = runner
        self.check_mode = check_mode
        self.host_cuda = host_cuda
        self.warnings: list[str] = []
        self.tool = _venv.tool_paths(params["tool_dir"])

    # --- the interpreter ---------------------------------------------------
    def interpreter(self) -> tuple[str, str]:
        python = self.p["python"]
        path = python if python.startswith("/") else self.runner.find(python)
        if not path or not os.access(path, os.X_OK):
            package = python if python.startswith("python") else "python3"
            raise EnvError(
                f"Python interpreter {python!r} was not found on the host. Install it (Debian/Ubuntu: apt-get install "
                f"{package} python3-venv; RHEL: dnf install {package}), or give its absolute path."
            )
        result = self.runner.run([path, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], check=False)
        if result is None or result.rc != 0:
            raise EnvError(f"{path} does not run as a Python interpreter: {(result.err if result else '').strip()[-300:]}")
        return path, result.out.strip()

    # --- the tool venv (uv, packaging) -------------------------------------
    def _tool_site(self) -> None:
        for site in glob.glob(os.path.join(self.tool["venv"], "lib", "python*", "site-packages")):
            rq.add_search_path(site)

    def ensure_tools(self, need_uv: bool) -> bool:
        """Make sure packaging (and uv when asked) can be used; True when they are there."""
        if not rq.have_packaging():
            self._tool_site()
        have_uv = os.access(self.tool["uv"], os.X_OK)
        if rq.have_packaging() and (have_uv or not need_uv):
            return True
        if self.check_mode:
            return rq.have_packaging()
        if not os.access(self.tool["python"], os.X_OK):
            _venv.validate_path(self.p["tool_dir"], "tool_dir")
            made = [d for d in (self.p["tool_dir"], self.tool["venv"]) if not os.path.lexists(d)]
            try:
                self._must([sys.executable, "-m", "venv", self.tool["venv"]], "creating the tool venv " + self.tool["venv"],
                           "Install python3-venv (Debian/Ubuntu) so venvs can be created.")
            except EnvError:
                # A venv without pip (no python3-venv) is left half made: remove what this run made.
                for directory in made:
                    _venv.remove_tree(directory)
                raise
        wants = [f"packaging=={_venv.TOOL_PACKAGING_VERSION}"]
        if need_uv:
            wants.append(f"uv=={_venv.TOOL_UV_VERSION}")
        argv = [self.tool["python"], "-m", "pip", "install", "-q"] + wants
        for link in self.p["find_links"]:
            argv += ["--find-links", link]
        if self.p["offline"]:
            argv.append("--no-index")
        result = self.runner.run(argv, check=False, env=_venv.installer_env("pip", self.p["index_url"], self.p["extra_index_urls"], self.p["ca_bundle"]))
        if result is None or result.rc != 0:
            if need_uv and self.p["backend"] == "auto":
                self.warnings.append("uv could not be installed into the tool venv; using pip. " + _tail(result))
                return self.ensure_tools(need_uv=False)
            raise EnvError(f"Installing {' '.join(wants)} into the tool venv {self.tool['venv']} failed: {_tail(result)}. "
                           "Point index_url/find_links at a source that has them.")
        _venv.clear_world_writable(self.tool["venv"])
        self._tool_site()
        return True

    def _must(self, argv: list[str], what: str, fix: str, env: dict[str, str] | None = None) -> t.Any:
        result = self.runner.run(argv, check=False, env=env)
        if result is None or result.rc != 0:
            raise EnvError(f"{what} failed: {_tail(result)}. {fix}")
        return result

    # --- reading an environment --------------------------------------------
    def probe(self, path: str) -> dict[str, t.Any] | None:
        python = _venv.env_python(path)
        if not os.access(python, os.X_OK):
            return None
        result = self.runner.run([python, "-I", "-c", _venv.PROBE], check=False)
        if result is None or result.rc != 0:
            return None  # a broken env: rebuild it
        data = json.loads(result.out.strip().splitlines()[-1])
        data["packages"] = {rq.canonical(n): v for n, v in data["packages"].items()}
        return data

    # --- the request ---------------------------------------------------------
    def requested(self) -> list[t.Any]:
        lines = list(self.p["packages"])
        reqs = rq.parse_lines(lines, "packages")
        if self.p["requirements"]:
            with open(self.p["requirements"], encoding="utf-8") as handle:
                reqs += rq.parse_lines(handle.read().splitlines(), self.p["requirements"])
        if self.p["constraints"]:
            with open(self.p["constraints"], encoding="utf-8") as handle:
                rq.parse_lines(handle.read().splitlines(), self.p["constraints"])
        return reqs

    def torch_index(self, reqs: list[t.Any]) -> str | None:
        names = {rq.canonical(r.name): r for r in reqs}
        if not any(n in names for n in TORCH_FAMILY) or self.p["torch_cuda"] == "none" or self.p["offline"]:
            return None
        tag = self.p["torch_cuda"]
        if tag == "auto":
            torch = names.get("torch")
            pinned = [s.version for s in (torch.specifier if torch else []) if s.operator in ("==", "===", "~=")]
            if not pinned:
                raise EnvError("torch_cuda: auto needs torch pinned (torch==2.5.1 or torch~=2.5.0) to pick its CUDA wheels; "
                               "pin it, or set torch_cuda to cpu or a tag such as cu124.")
            try:
                tag = torch_cuda_tag(pinned[0].replace(".*", ""), self.host_cuda())
            except ValueError as exc:
                raise EnvError(str(exc)) from exc
        return tag

    # --- the run ---------------------------------------------------------------
    def run(self) -> dict[str, t.Any]:
        p = self.p
        path = p["path"]
        result: dict[str, t.Any] = {"changed": False, "path": path, "added": {}, "removed": {}, "upgraded": {}, "downgraded": {}}
        if p["state"] == "absent":
            exists = os.path.lexists(path)
            if exists and not self.check_mode:
                target = os.path.realpath(path) if os.path.islink(path) else None
                _venv.remove_tree(path)
                _venv.remove_tree(target)
                gens = _venv.generations_dir(path)
                if os.path.isdir(gens) and not os.listdir(gens):
                    os.rmdir(gens)
            result["changed"] = exists
            return result

        python, python_version = self.interpreter()
        backend = p["backend"]
        need_uv = backend in ("uv", "auto")
        tools_ready = self.ensure_tools(need_uv)
        if backend == "auto":
            backend = "uv" if os.access(self.tool["uv"], os.X_OK) or (self.check_mode and need_uv) else "pip"
        result["backend"] = backend
        result["python_version"] = python_version
        if not tools_ready:
            self.warnings.append("packaging is not available until the first real run installs the tool venv; check mode "
                                 "cannot compare the environment and reports it as changing.")
            result["changed"] = True
            return result

        reqs = self.requested()
        wanted_names = sorted({rq.canonical(r.name) for r in reqs})
        tag = self.torch_index(reqs)
        result["torch_index"] = tag
        current = self.probe(path) if os.path.lexists(path) else None
        state = _venv.read_state(path) if current else None
        before = _user_packages(current["packages"], wanted_names) if current else {}

        same_python = current is not None and current["python"].rsplit(".", 1)[0] == python_version.rsplit(".", 1)[0]
        unmet = [str(r) for r in reqs if not (current and rq.satisfied(r, current["packages"], current["markers"]))]
        dropped = sorted(set((state or {}).get("requested_names", [])) - set(wanted_names))
        if current and same_python and not unmet and not dropped:
            result["installed"] = before
            result["python_version"] = current["python"]
            result["changed"] = self.write_lock(current["packages"], wanted_names)
            return result

        if self.check_mode:
            result["added"] = {rq.canonical(r.name): "(new)" for r in reqs if rq.canonical(r.name) not in before}
            result["removed"] = {n: before.get(n) for n in dropped}
            result["upgraded"] = {rq.canonical(r.name): {"from": before[rq.canonical(r.name)], "to": str(r.specifier)}
                                  for r in reqs if rq.canonical(r.name) in before and str(r) in unmet}
            result["changed"] = True
            result["installed"] = before
            return result

        gen = _venv.new_generation(path)
        try:
            after_probe = self.build(gen, python, backend, reqs, wanted_names, tag)
            _venv.write_state(gen, {"requested": [str(r) for r in reqs], "requested_names": wanted_names,
                                    "backend": backend, "python": after_probe["python"], "torch_index": tag})
            self.set_owner(gen)
        except BaseException:
            _venv.remove_tree(gen)
            raise
        previous = _venv.swap(path, gen)
        self.set_owner(path, follow=False)
        if previous and (previous.startswith(_venv.generations_dir(path) + "/") or ".mlhost-replaced-" in previous):
            _venv.remove_tree(previous)
        after = _user_packages(after_probe["packages"], wanted_names)
        result.update(rq.diff_installed(before, after))
        result["installed"] = after
        result["python_version"] = after_probe["python"]
        result["generation"] = gen
        self.write_lock(after_probe["packages"], wanted_names)
        result["changed"] = True
        return result

    def build(self, gen: str, python: str, backend: str, reqs: list[t.Any], names: list[str], tag: str | None) -> dict[str, t.Any]:
        p = self.p
        os.makedirs(os.path.dirname(gen), mode=0o755, exist_ok=True)
        extra = list(p["extra_index_urls"])
        if tag:
            extra.insert(0, f"{p['torch_index_url'].rstrip('/')}/{tag}")
        uv = self.tool["uv"]
        env = _venv.installer_env(backend, p["index_url"], extra, p["ca_bundle"])
        self._must(_venv.venv_command(backend, python, gen, uv), "Creating the venv " + gen,
                   "Install python3-venv (Debian/Ubuntu) or the interpreter's venv module.", env)
        req_file = os.path.join(gen, "mlhost-requirements.txt")
        with open(req_file, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{r}\n" for r in reqs))
        argv = _venv.install_command(backend, gen, req_file, p["constraints"], p["find_links"], p["offline"], uv)
        result = self.runner.run(argv, check=False, env=env)
        if result is None or result.rc != 0:
            culprits = _venv.failing_requirement((result.err + result.out) if result else "", names)
            raise EnvError(
                f"Installing into the new environment failed{' at ' + ', '.join(culprits) if culprits else ''}; "
                f"the environment at {p['path']} was left as it was. {backend} said: {_tail(result, 12)}",
                failing=culprits,
            )
        check = self.runner.run([_venv.env_python(gen), "-I", "-c", _venv.IMPORT_CHECK] + names, check=False)
        if check is None or check.rc != 0:
            raise EnvError(f"The import check in the new environment did not run: {_tail(check)}; the old environment was kept.")
        imports = json.loads(check.out.strip().splitlines()[-1])
        if imports["failed"]:
            raise EnvError(
                "The new environment installed but does not import: "
                + "; ".join(f"{k}: {v}" for k, v in imports["failed"].items())
                + f". The environment at {p['path']} was left as it was.",
                failing=sorted(imports["failed"]),
            )
        _venv.clear_world_writable(gen)
        probed = self.probe(gen)
        if probed is None:
            raise EnvError("The new environment does not answer its own probe; the old environment was kept.")
        return probed

    def set_owner(self, target: str, follow: bool = True) -> None:
        uid = pwd.getpwnam(self.p["owner"]).pw_uid if self.p["owner"] else -1
        gid = grp.getgrnam(self.p["group"]).gr_gid if self.p["group"] else -1
        if follow and self.p["mode"]:
            os.chmod(target, int(self.p["mode"], 8))
        if uid == -1 and gid == -1:
            return
        if not follow:
            os.lchown(target, uid, gid)
            return
        for root, dirs, files in os.walk(target):
            os.lchown(root, uid, gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)

    def write_lock(self, packages: dict[str, str], names: list[str]) -> bool:
        lock = self.p["lock_file"]
        if not lock:
            return False
        text = rq.lock_text(_user_packages(packages, names),
                            f"Exact pins of {self.p['path']}, written by mlinfra.mlhost.python_env.")
        return _venv.write_text_if_changed(lock, text, self.check_mode)


def _user_packages(packages: dict[str, str], requested: list[str]) -> dict[str, str]:
    return {n: v for n, v in sorted(packages.items()) if n not in _venv.SEED_PACKAGES or n in requested}


def _tail(result: t.Any, lines: int = 8) -> str:
    if result is None:
        return "the program was not found"
    text = (result.err or "") + (result.out or "")
    return " | ".join(text.strip().splitlines()[-lines:]) or f"rc={result.rc}"
