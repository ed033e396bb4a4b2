# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Python interpreters on a host.

PRIVATE to the collection: no compatibility promise outside it.

Each interpreter found on ``PATH`` is probed once (``python -I -S -c PROBE``). A pyenv shim is not run: it is a
bash script that starts pyenv, which picks a version and execs that version's interpreter (or fails when the
selected versions lack the command). ``ShimResolver`` reads the same files pyenv reads (the shim's text,
``PYENV_VERSION``, ``.python-version`` from the working directory up, ``$PYENV_ROOT/version``, the ``versions``
tree, the ``PATH`` without the shims for ``system``) and names the interpreter the shim would exec, so that only
real interpreters are probed. Whenever pyenv could do something it does not model (a shim of another text, a
hook script it does not know, a version that is a prefix, a virtualenv or an unsafe name, a file it cannot read,
a relative ``PATH`` entry), the shim is probed as before.
"""

from __future__ import annotations

import json
import os
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

STANDARD_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
_NAME_RE = re.compile(r"python3(\.[0-9]+)?")
# Runs in the interpreter being described: isolated (-I) and without site (-S), so it is fast
# and reads nothing from the user's environment.
PROBE = (
    "import json,sys,sysconfig,os;"
    "s=sysconfig.get_path('stdlib');"
    "print(json.dumps({'version':'%d.%d.%d'%sys.version_info[:3],'executable':os.path.realpath(sys.executable),"
    "'externally_managed':os.path.exists(os.path.join(s,'EXTERNALLY-MANAGED'))}))"
)


def search_path(live: bool, environ_path: str | None) -> list[str]:
    dirs = []
    if live and environ_path:
        dirs.extend(d for d in environ_path.split(os.pathsep) if d.startswith("/"))
    for d in STANDARD_PATH:
        if d not in dirs:
            dirs.append(d)
    return dirs


def candidates(root: Sysroot, dirs: list[str]) -> list[str]:
    """python3 and python3.N executables in ``dirs`` (paths inside the root)."""
    seen = []
    for d in dirs:
        for name in root.listdir(d):
            if _NAME_RE.fullmatch(name) and root.is_executable(d, name):
                seen.append(f"{d.rstrip('/')}/{name}")
    return seen


# pyenv's shim, as ``pyenv rehash`` writes it (pyenv 2.4 on): {root} is PYENV_ROOT, {pyenv} the pyenv program.
_SHIM_TEXT = (
    "#!/usr/bin/env bash\n"
    "set -e\n"
    '[ -n "$PYENV_DEBUG" ] && set -x\n'
    "\n"
    'program="${0##*/}"\n'
    "\n"
    'export PYENV_ROOT="{root}"\n'
    "SHIM_PATH=${0%/*}\n"
    'if [[ $SHIM_PATH != "{root}/shims" ]]; then\n'
    '  export _PYENV_SHIM_PATH="$SHIM_PATH"\n'
    "fi\n"
    'exec "{pyenv}" exec "$program" "$@"\n'
)
_QUOTED_PATH = r"/[^\"$`\\\n]*"  # an absolute path that means itself inside double quotes
_SHIM_RE = re.compile(
    re.escape(_SHIM_TEXT)
    .replace(re.escape("{root}"), f"(?P<root>{_QUOTED_PATH})", 1)
    .replace(re.escape("{root}"), "(?P=root)", 1)
    .replace(re.escape("{pyenv}"), f"(?P<pyenv>{_QUOTED_PATH})", 1)
)
# Hook scripts pyenv sources on the way from a shim to its interpreter, and those known to change nothing for a
# python3* command whose selected versions are no virtualenvs (pyenv's pip rehash, pyenv-virtualenv's which hooks,
# which act only for pip/conda/python-config or when no version has the command). Any other makes a shim uncertain.
_KNOWN_HOOKS = {
    "exec": {"pip-rehash.bash"},
    "which": {"conda.bash", "python-config.bash", "system-site-packages.bash"},
    "version-name": set(),
}
_SYSTEM_HOOK_DIRS = ["/usr/etc/pyenv.d", "/usr/local/etc/pyenv.d", "/etc/pyenv.d", "/usr/lib/pyenv/hooks"]
_VERSION_LINE_LIMIT = 1000  # pyenv reads 1024 characters a line: a longer line is read as two


class Uncertain(Exception):
    """pyenv could do something here that the resolver does not model: run the shim instead."""


class ShimResolver:
    """The interpreter a pyenv shim would exec, found without running it (live system, paths inside ``root``).

    ``resolve(path)`` returns ``path`` itself for what is not a recognised shim or where pyenv's choice is
    uncertain (probe it as it is), the interpreter's path for a shim that execs one, and None for a shim whose
    selected versions (and the system) lack the command: pyenv would fail it with "command not found".
    """

    def __init__(self, root: Sysroot, environ: t.Mapping[str, str], pwd: str, environ_path: str | None) -> None:
        self.root = root
        self.environ = environ
        self.pwd = pwd
        self.environ_path = environ_path or ""
        self._states: dict[tuple[str, str], t.Any] = {}

    def resolve(self, path: str) -> str | None:
        try:
            return self._resolve(path)
        except (Uncertain, OSError, ValueError):
            return path

    def _resolve(self, path: str) -> str | None:
        text = self.root.read_bytes(path, limit=4096)
        match = _SHIM_RE.fullmatch(text.decode("utf-8", "strict")) if text and len(text) < 4096 else None
        if not match:
            return path
        pyenv_root, program = match.group("root").rstrip("/"), match.group("pyenv")
        if not pyenv_root or os.path.dirname(path) != f"{pyenv_root}/shims":
            raise Uncertain("a shim outside its root's shims directory exports _PYENV_SHIM_PATH")
        command = os.path.basename(path)
        if any(name.startswith("_PYENV_SHIM_PATH") for name in self.environ):
            raise Uncertain("custom shim paths")
        state = self._states.get((pyenv_root, program))
        if state is None:
            state = self._states[(pyenv_root, program)] = self._state(pyenv_root, program)
        if isinstance(state, Exception):
            raise state
        prefix, versions = state
        for version in versions:
            if version == "system":
                found = self._system(pyenv_root, prefix, command)
            else:
                found = f"{pyenv_root}/versions/{version}/bin/{command}"
                if not self._executable(found):
                    continue
            if found:
                return found
        return self._system(pyenv_root, prefix, command) or None

    def _state(self, pyenv_root: str, program: str) -> t.Any:
        """(install prefix, selected versions) of one pyenv root, or the Uncertain to raise for every shim of it."""
        try:
            real = self.root.realpath(program)
            if os.path.basename(real) != "pyenv" or os.path.basename(os.path.dirname(real)) != "libexec":
                raise Uncertain("the shim execs no pyenv/libexec/pyenv")
            if not self.root.is_executable(program):
                raise Uncertain("the shim's pyenv is not executable")
            prefix = os.path.dirname(os.path.dirname(real))
            self._check_hooks(pyenv_root, prefix)
            return prefix, [self._installed(pyenv_root, v) for v in self._selected(pyenv_root)]
        except (Uncertain, OSError, ValueError) as exc:
            return exc

    def _check_hooks(self, pyenv_root: str, prefix: str) -> None:
        dirs = self.environ.get("PYENV_HOOK_PATH", "").split(":") if self.environ.get("PYENV_HOOK_PATH") else []
        dirs.append(f"{pyenv_root}/pyenv.d")
        if prefix != pyenv_root:
            dirs.append(f"{prefix}/pyenv.d")
        dirs += _SYSTEM_HOOK_DIRS + self.root.glob(f"{pyenv_root.lstrip('/')}/plugins/*/etc/pyenv.d")
        for directory in dirs:
            if not directory.startswith("/"):
                raise Uncertain("a relative hook path")
            for command, known in _KNOWN_HOOKS.items():
                for script in self.root.glob(f"{directory.lstrip('/')}/{command}/*.bash"):
                    if os.path.basename(script) not in known:
                        raise Uncertain(f"pyenv hook {script}")

    def _selected(self, pyenv_root: str) -> list[str]:
        """The selected version names, as pyenv-version-name reads them (before they are resolved)."""
        value = self.environ.get("PYENV_VERSION") or ""
        if not value:
            value = self._version_file_read(self._version_file(pyenv_root), pyenv_root)
        if not value or value == "system":
            return ["system"]
        names = value.split(":")
        if value.endswith(":"):
            names.pop()  # bash drops one empty field at the end
        for name in names:
            if not name or name in (".", "..") or "/" in name or re.search(r"[\s*?\[\\]", name):
                raise Uncertain(f"version name {name!r}")
        return names

    def _version_file(self, pyenv_root: str) -> str:
        pyenv_dir = self.environ.get("PYENV_DIR") or self.pwd
        if not pyenv_dir.startswith("/") or not self.root.isdir(pyenv_dir):
            raise Uncertain("PYENV_DIR")
        pyenv_dir = os.path.normpath(pyenv_dir)
        found = self._local_version_file(pyenv_dir)
        if found is None and pyenv_dir != self.pwd:
            found = self._local_version_file(self.pwd)
        return found or f"{pyenv_root}/version"

    def _local_version_file(self, start: str) -> str | None:
        directory = start.rstrip("/")
        while not re.fullmatch(r"//[^/]*", directory):
            candidate = f"{directory}/.python-version"
            if os.path.isfile(self.root.path(candidate)):
                return candidate
            if not directory:
                break
            directory = directory.rsplit("/", 1)[0]
        return None

    def _version_file_read(self, name: str, pyenv_root: str) -> str:
        """pyenv-version-file-read: the first word of each line, comments and empty lines left out, ':'-joined."""
        if not self.root.exists(name):
            return ""  # no version file: the system
        data = self.root.read_bytes(name, limit=65537)
        if data is None:
            raise Uncertain(f"{name} cannot be read")
        if not data:
            return ""  # an empty version file: the system
        if len(data) > 65536 or b"\0" in data:
            raise Uncertain(f"{name} is too long or holds NUL bytes")
        words = []
        for line in data.decode("utf-8", "strict").split("\n"):
            if len(line) > _VERSION_LINE_LIMIT:
                raise Uncertain(f"a line of {name} is over pyenv's read limit")
            word = (re.split(r"[ \t\r]+", line.strip(" \t\r")) or [""])[0]
            if not word or word.startswith("#"):
                continue
            if word == ".." or "/" in word:
                raise Uncertain(f"{name} names a path: pyenv checks it against its versions")
            words.append(word)
        return ":".join(words)

    def _installed(self, pyenv_root: str, name: str) -> str:
        """A selected name as pyenv resolves it: system, an installed version, or the name of one not installed."""
        if name == "system":
            return name
        normalised = name[len("python-"):] if name.startswith("python-") else name
        for candidate in (name, normalised):
            version_dir = f"{pyenv_root}/versions/{candidate}"
            if self.root.isdir(version_dir):
                if any(self.root.exists(version_dir, mark) for mark in ("pyvenv.cfg", "bin/activate", "conda-meta")):
                    raise Uncertain(f"{candidate} is a virtual environment: pyenv-virtualenv's hooks apply")
                return candidate
        stem = normalised[:-1] if re.fullmatch(r".*[0-9]t", normalised) else normalised
        if any(entry.startswith((name, stem)) for entry in self.root.listdir(f"{pyenv_root}/versions")):
            raise Uncertain(f"{name} is a prefix pyenv-latest may resolve")
        return name  # not installed: pyenv-which passes it over

    def _system(self, pyenv_root: str, prefix: str, command: str) -> str | None:
        """``command -v`` on the PATH pyenv-which searches for the system: pyenv's own directories first, the shims out."""
        plugins = self.root.glob(f"{pyenv_root.lstrip('/')}/plugins/*/bin")[::-1] if prefix != pyenv_root else []
        dirs = [f"{prefix}/libexec"] + plugins + self.root.glob(f"{prefix.lstrip('/')}/plugins/*/bin")[::-1]
        home = self.environ.get("HOME", "")
        dirs += [d for d in self.environ_path.replace("~", home).split(":") if d != f"{pyenv_root}/shims"]
        for directory in dirs:
            if not directory.startswith("/"):
                raise Uncertain("a relative PATH entry")
            found = f"{directory.rstrip('/')}/{command}"
            if self._executable(found):
                return found
        return None

    def _executable(self, path: str) -> bool:
        """What ``[ -x ]`` sees, refused where exec would do something else: a directory, a script."""
        full = self.root.path(path)
        if not os.access(full, os.X_OK):
            return False
        if not os.path.isfile(full):
            raise Uncertain(f"{path} is executable but no file")
        head = self.root.read_bytes(path, limit=2)
        if head is None or head.startswith(b"#!"):
            raise Uncertain(f"{path} is a script (another shim?)")
        return True


def shell_pwd(environ: t.Mapping[str, str]) -> str:
    """The working directory as the shim's bash sees it: ``$PWD`` when it names the current directory, else the real one."""
    try:
        cwd = os.getcwd()
    except OSError:
        return ""  # no working directory: the resolver is uncertain, the shims are probed
    pwd = environ.get("PWD") or ""
    try:
        if pwd.startswith("/") and os.path.samefile(pwd, cwd):
            return os.path.normpath(pwd)
    except OSError:
        pass
    return cwd


def pythons(
    root: Sysroot,
    run: t.Callable[[list[str]], t.Any],
    environ_path: str | None,
    environ: t.Mapping[str, str] | None = None,
    pwd: str | None = None,
) -> list[dict[str, t.Any]]:
    """[{path, version, externally_managed}], one per distinct interpreter; a pyenv shim is probed as the
    interpreter it would exec (``ShimResolver``), not run. ``environ`` and ``pwd`` are the module's (the shims')."""
    result = []
    by_real: dict[str, dict[str, t.Any]] = {}
    resolver = None
    if root.live:
        environ = os.environ if environ is None else environ
        resolver = ShimResolver(root, environ, pwd or shell_pwd(environ), environ_path)
    for path in candidates(root, search_path(root.live, environ_path)):
        real = root.realpath(path)
        if real in by_real:
            continue
        entry: dict[str, t.Any] = {"path": path, "version": None, "externally_managed": None}
        if resolver is not None:
            target = resolver.resolve(path)
            if target is None:
                continue  # a pyenv shim no selected version (nor the system) has: pyenv fails it
            if target != path:
                real = root.realpath(target)
                if real in by_real:
                    continue
            probed = run([target, "-I", "-S", "-c", PROBE])
            if probed is not None and probed.rc == 0:
                try:
                    data = json.loads(probed.out.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    data = {}
                entry["version"] = data.get("version")
                entry["externally_managed"] = data.get("externally_managed")
                real = data.get("executable") or real
                if real in by_real:
                    continue
            if entry["version"] is None:
                continue  # not a working interpreter (a pyenv shim for a version not selected, say)
        else:
            match = re.search(r"python(3\.\d+)", os.path.basename(real))
            if match:
                entry["version"] = match.group(1)
                entry["externally_managed"] = root.exists(f"usr/lib/python{match.group(1)}/EXTERNALLY-MANAGED")
        by_real[real] = entry
        result.append(entry)
    return result
