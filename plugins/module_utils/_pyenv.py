# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Python interpreters on a host.

PRIVATE to the collection: no compatibility promise outside it.
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


def pythons(root: Sysroot, run: t.Callable[[list[str]], t.Any], environ_path: str | None) -> list[dict[str, t.Any]]:
    """[{path, version, externally_managed}], one per distinct interpreter."""
    result = []
    by_real: dict[str, dict[str, t.Any]] = {}
    for path in candidates(root, search_path(root.live, environ_path)):
        real = root.realpath(path)
        if real in by_real:
            continue
        entry: dict[str, t.Any] = {"path": path, "version": None, "externally_managed": None}
        if root.live:
            probed = run([path, "-I", "-S", "-c", PROBE])
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
