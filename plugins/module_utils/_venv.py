# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Python virtual environments built atomically, with uv or pip.

PRIVATE to the collection: no compatibility promise outside it.

Layout: ``path`` is a symlink to a generation directory
``<parent>/.<name>.mlhost-envs/<generation>``. An update builds a new
generation beside the current one, installs into it, imports the requested
top-level packages, and only then swaps the symlink with one rename(2). A
failure removes the new generation and leaves the old env as it was. Each
generation keeps ``mlhost-env.json`` (what was requested), so a later run
can tell an unchanged request from one that removes packages.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import stat
import time
import typing as t

STATE_FILE = "mlhost-env.json"
SEED_PACKAGES = {"pip", "setuptools", "wheel"}
TOOL_UV_VERSION = "0.13.9"
TOOL_PACKAGING_VERSION = "26.3"
SYSTEM_PREFIXES = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/boot", "/dev", "/proc", "/sys", "/run", "/var/lib")

# Runs inside an environment's own interpreter: what it holds and its marker environment.
PROBE = r"""
import importlib.metadata as m, json, os, platform, sys
pk = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        pk[name] = d.version
print(json.dumps({
    "python": "%d.%d.%d" % sys.version_info[:3],
    "prefix": sys.prefix,
    "packages": pk,
    "markers": {
        "implementation_name": sys.implementation.name,
        "implementation_version": "%d.%d.%d" % sys.implementation.version[:3],
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform,
    },
}))
"""

# Imports the top-level modules of the named distributions (argv[1:]); prints what failed.
IMPORT_CHECK = r"""
import importlib, importlib.metadata as m, json, re, sys
def canon(n): return re.sub(r"[-_.]+", "-", n).lower()
want = {canon(a) for a in sys.argv[1:]}
failed, checked = {}, []
for d in m.distributions():
    if canon(d.metadata["Name"] or "") not in want:
        continue
    tops = (d.read_text("top_level.txt") or "").split()
    if not tops:
        seen = []
        for f in d.files or []:
            first = f.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "bin") or first.startswith("_"):
                continue
            name = first[:-3] if first.endswith(".py") else first
            if "." not in name and name not in seen:
                seen.append(name)
        tops = seen
    for top in tops:
        if not top or top.startswith("_") or top in ("tests", "test"):
            continue
        checked.append(top)
        try:
            importlib.import_module(top)
        except Exception as exc:
            failed[top] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"checked": checked, "failed": failed}))
"""


class EnvError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def validate_path(path: str, what: str = "path") -> None:
    if not path or not os.path.isabs(path):
        raise EnvError(f"{what} {path!r} must be an absolute path, for example /opt/envs/torch.")
    norm = os.path.normpath(path)
    # A symlink (or a symlinked parent) that leads into a system tree is that tree: check where it really points too.
    real = os.path.realpath(norm)
    for where in (norm, real):
        if where == "/" or any(where == p or where.startswith(p + "/") for p in SYSTEM_PREFIXES) or where in ("/opt", "/home", "/srv", "/var", "/tmp", "/root"):
            shown = f"{path!r}" if where == norm else f"{path!r} (a link to {where})"
            raise EnvError(
                f"{what} {shown} is a system location: an environment there could replace system files. "
                "Choose a directory of its own, for example /opt/envs/<name> or ~/envs/<name>."
            )


def refuse_python_installation(path: str, what: str = "path") -> None:
    """Refuse a directory that is a Python installation's own prefix (bin/python*, no pyvenv.cfg): not a venv to replace."""
    real = os.path.realpath(path)
    if not os.path.isdir(real) or os.path.exists(os.path.join(real, "pyvenv.cfg")):
        return
    if glob.glob(os.path.join(real, "bin", "python*")) or glob.glob(os.path.join(real, "lib", "python3*", "os.py")):
        raise EnvError(
            f"{what} {path!r} is a Python installation's own prefix (it has bin/python but no pyvenv.cfg), not a venv: "
            "installing into it or replacing it would change or delete that Python. Choose a directory of its own, "
            "for example /opt/envs/<name>, and give that Python as python."
        )


def generations_dir(path: str) -> str:
    parent, name = os.path.split(os.path.normpath(path))
    return os.path.join(parent, f".{name}.mlhost-envs")


def new_generation(path: str) -> str:
    return os.path.join(generations_dir(path), time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3))


def env_python(path: str) -> str:
    return os.path.join(path, "bin", "python")


def read_state(path: str) -> dict[str, t.Any] | None:
    try:
        with open(os.path.join(path, STATE_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_state(gen: str, state: dict[str, t.Any]) -> None:
    with open(os.path.join(gen, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")


def swap(path: str, gen: str) -> str | None:
    """Point ``path`` at ``gen`` atomically; returns the previous target to remove (or a moved-aside dir)."""
    previous = None
    if os.path.islink(path):
        previous = os.path.realpath(path)
    elif os.path.isdir(path):
        # A plain directory env (made by hand, or by another tool): move it aside first.
        previous = path + ".mlhost-replaced-" + secrets.token_hex(3)
        os.rename(path, previous)
    tmp_link = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.mlhost-link-{secrets.token_hex(3)}")
    os.symlink(gen, tmp_link)
    os.replace(tmp_link, path)
    return previous


def remove_tree(path: str | None) -> None:
    if path and os.path.lexists(path):
        if os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def clear_world_writable(top: str) -> list[str]:
    """Remove the world-write bit from every file and directory below ``top`` (uv leaves a 0666 .lock)."""
    fixed = []
    for root, dirs, files in os.walk(top):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH:
                os.chmod(name, stat.S_IMODE(st.st_mode) & ~stat.S_IWOTH)
                fixed.append(name)
    return fixed


def tool_paths(tool_dir: str) -> dict[str, str]:
    venv = os.path.join(tool_dir, "venv")
    return {"venv": venv, "python": os.path.join(venv, "bin", "python"), "uv": os.path.join(venv, "bin", "uv")}


# backend -> (fixed settings, index variable, extra-index variable, CA variables)
_INSTALLER_ENV = {
    "pip": (
        {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_CONFIG_FILE": os.devnull},
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", ("PIP_CERT", "SSL_CERT_FILE"),
    ),
    "uv": ({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}, "UV_DEFAULT_INDEX", "UV_INDEX", ("SSL_CERT_FILE",)),
}


def installer_env(backend: str, index_url: str | None, extra_index_urls: list[str], ca_bundle: str | None) -> dict[str, str]:
    """The installer's environment. Index URLs (which may hold tokens) travel here, never in argv."""
    fixed, index_var, extra_var, ca_vars = _INSTALLER_ENV[backend]
    env = dict(fixed)
    if index_url:
        env[index_var] = index_url
    if extra_index_urls:
        env[extra_var] = " ".join(extra_index_urls)
    for var in ca_vars if ca_bundle else ():
        env[var] = ca_bundle
    return env


def venv_command(backend: str, python: str, target: str, uv: str | None = None) -> list[str]:
    if backend == "uv":
        return [uv or "uv", "venv", "--no-config", "--python", python, target]
    return [python, "-m", "venv", target]


def install_command(
    backend: str,
    target: str,
    requirements_file: str,
    constraints: str | None,
    find_links: list[str],
    offline: bool,
    uv: str | None = None,
) -> list[str]:
    python = env_python(target)
    if backend == "uv":
        argv = [uv or "uv", "pip", "install", "--no-config", "--python", python, "-r", requirements_file]
    else:
        argv = [python, "-m", "pip", "install", "--no-warn-script-location", "-r", requirements_file]
    if constraints:
        argv += ["-c", constraints]
    for link in find_links:
        argv += ["--find-links", link]
    if offline:
        argv.append("--no-index")
    return argv


def failing_requirement(output: str, names: list[str]) -> list[str]:
    """The requested names an installer's error output talks about."""
    text = (output or "").lower()
    return [n for n in names if re.search(rf"(?<![a-z0-9_.-]){re.escape(n.lower())}(?![a-z0-9_-])", text)]


def write_text_if_changed(path: str, text: str, check_mode: bool, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` atomically (beside, then rename) when it differs; True when it did (or would)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    if not check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path + ".tmp", mode)
        os.replace(path + ".tmp", path)
    return True
