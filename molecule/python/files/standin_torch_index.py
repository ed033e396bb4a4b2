# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes a STAND-IN of PyTorch's wheel index under argv[1]: <tag>/torch/index.html (PEP 503) for the tags in
argv[2:] (cpu, cu128), each listing one tiny stand-in wheel named as PyTorch's are (torch-2.13.0+<tag>-cpXY-cpXY-
manylinux_2_28_<machine>.whl) for this Python and machine. The wheel holds torch/__init__.py with __version__ and
nothing else: it is not PyTorch. python_env reads the pages and installs from them as from download.pytorch.org."""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import sys
import zipfile

VERSION = "2.13.0"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(directory: str, tag: str) -> str:
    py = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    wheel_tag = f"{py}-{py}-manylinux_2_28_{platform.machine()}"
    version = f"{VERSION}+{tag}"
    info = f"torch-{version}.dist-info"
    files = {
        "torch/__init__.py": f'__version__ = "{version}"  # mlhost stand-in, not PyTorch\n'.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\nSummary: mlhost stand-in, not PyTorch\n".encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: mlhost-standin\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n".encode(),
        f"{info}/top_level.txt": b"torch\n",
    }
    record = "\n".join([record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]) + "\n"
    name = f"torch-{version}-{wheel_tag}.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as whl:
        for member, data in files.items():
            whl.writestr(member, data)
        whl.writestr(f"{info}/RECORD", record)
    return name


def main() -> None:
    root = sys.argv[1]
    for tag in sys.argv[2:]:
        directory = os.path.join(root, tag, "torch")
        os.makedirs(directory, exist_ok=True)
        name = write_wheel(directory, tag)
        with open(os.path.join(directory, "index.html"), "w", encoding="utf-8") as page:
            href = name.replace("+", "%2B")
            page.write(f'<!DOCTYPE html>\n<html><body><h1>Links for torch</h1>\n<a href="{href}">{name}</a><br/>\n</body></html>\n')


if __name__ == "__main__":
    main()
