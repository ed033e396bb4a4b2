# SPDX-License-Identifier: GPL-3.0-or-later
"""Build a small, real conda channel for the tests: real .conda packages
(conda-package-handling) indexed into real repodata.json (py-rattler's
indexer; conda-index 0.13 imports the conda package, which PyPI does not
carry). No conda-forge needed.

    python build_channel.py CHANNEL_DIR

Packages (all noarch: generic):
  mlhost-data 1.0.0, 2.0.0    share/mlhost-data/VERSION
  mlhost-greet 1.0.0, 1.1.0   bin/mlhost-greet, a script with the install
                              prefix patched in; depends on mlhost-data >=1 (1.0.0)
                              and mlhost-data >=2 (1.1.0)
  mlhost-extra 0.1.0          share/mlhost-extra/README
  pip 24.3                    a STAND-IN named pip (share/mlhost-pip-standin/README;
                              no Python, no pip program): an environment.yml with a
                              pip: subsection solves, and its pip step then fails for
                              real (the env has no bin/python)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"

PACKAGES = [
    ("mlhost-data", "1.0.0", [], {"share/mlhost-data/VERSION": "1.0.0\n"}),
    ("mlhost-data", "2.0.0", [], {"share/mlhost-data/VERSION": "2.0.0\n"}),
    ("mlhost-extra", "0.1.0", [], {"share/mlhost-extra/README": "an extra package\n"}),
    ("pip", "24.3", [], {"share/mlhost-pip-standin/README": "a stand-in named pip: no Python, no pip program\n"}),
]
for _version, _dep in (("1.0.0", "mlhost-data >=1"), ("1.1.0", "mlhost-data >=2")):
    PACKAGES.append((
        "mlhost-greet", _version, [_dep],
        {"bin/mlhost-greet": "#!/bin/sh\n"
                             f'echo "mlhost-greet {_version} data $(cat {PLACEHOLDER}/share/mlhost-data/VERSION) prefix {PLACEHOLDER}"\n'},
    ))


def build(name: str, version: str, depends: list[str], files: dict[str, str], out: str) -> str:
    with tempfile.TemporaryDirectory() as work:
        paths = []
        for rel, text in sorted(files.items()):
            path = os.path.join(work, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            data = text.encode()
            entry = {"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(), "size_in_bytes": len(data)}
            if rel.startswith("bin/"):
                os.chmod(path, 0o755)
            if PLACEHOLDER in text:
                entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
            paths.append(entry)
        info = os.path.join(work, "info")
        os.makedirs(info)
        index = {"name": name, "version": version, "build": "0", "build_number": 0, "depends": depends,
                 "noarch": "generic", "subdir": "noarch", "license": "GPL-3.0-or-later", "timestamp": 1763769600000}
        meta = {
            "index.json": index,
            "paths.json": {"paths": paths, "paths_version": 1},
            "about.json": {"summary": f"{name}: a test package of mlinfra.mlhost's conda scenario"},
        }
        for fname, data in meta.items():
            with open(os.path.join(info, fname), "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
        with open(os.path.join(info, "files"), "w", encoding="utf-8") as handle:
            handle.write("".join(p["_path"] + "\n" for p in paths))
        prefixed = [p["_path"] for p in paths if "prefix_placeholder" in p]
        if prefixed:
            with open(os.path.join(info, "has_prefix"), "w", encoding="utf-8") as handle:
                handle.write("".join(f"{PLACEHOLDER} text {p}\n" for p in prefixed))
        fn = f"{name}-{version}-0.conda"
        cph = os.path.join(os.path.dirname(sys.executable), "cph")
        subprocess.run([cph, "create", work, fn, "--out-folder", out], check=True, stdout=subprocess.DEVNULL)
        return fn


def main() -> None:
    channel = os.path.abspath(sys.argv[1])
    noarch = os.path.join(channel, "noarch")
    shutil.rmtree(channel, ignore_errors=True)
    os.makedirs(noarch)
    os.makedirs(os.path.join(channel, "linux-64"))
    for name, version, depends, files in PACKAGES:
        build(name, version, depends, files, noarch)
    from rattler.index import index_fs  # noqa: E402 (only where the tools venv has it)

    asyncio.run(index_fs(channel, write_zst=False, write_shards=False))
    for sub in ("noarch", "linux-64"):
        if not os.path.exists(os.path.join(channel, sub, "repodata.json")):
            with open(os.path.join(channel, sub, "repodata.json"), "w", encoding="utf-8") as handle:
                json.dump({"info": {"subdir": sub}, "packages": {}, "packages.conda": {}, "repodata_version": 1}, handle)
    print(json.dumps(sorted(os.listdir(noarch))), flush=True)
    # py-rattler 0.28's runtime threads can abort the interpreter's finalization: leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
