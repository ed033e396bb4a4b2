# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""CUDA toolkits present on a host (NVIDIA's /usr/local/cuda-X.Y and distro packages).

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot


def toolkit_version(root: Sysroot, path: str) -> str | None:
    """Full version ('12.4.131') of the toolkit at ``path`` from version.json or version.txt."""
    text = root.read(path, "version.json")
    if text:
        try:
            data = json.loads(text)
            version = (data.get("cuda") or {}).get("version")
            if version:
                return str(version)
        except (ValueError, AttributeError):
            pass
    text = root.read(path, "version.txt") or ""
    match = re.search(r"CUDA Version\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def parse_nvcc_version(text: str) -> str | None:
    """'Cuda compilation tools, release 13.0, V13.0.88' -> '13.0.88'."""
    match = re.search(r"release \d+\.\d+, V(\d+\.\d+\.\d+)", text) or re.search(r"release (\d+\.\d+)", text)
    return match.group(1) if match else None


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def cuda_toolkits(
    root: Sysroot, distro_packages: dict[str, str], run: t.Callable[[t.List[str]], t.Any]
) -> list[dict[str, t.Any]]:
    """[{version, full_version, path, nvcc, source, default}] sorted by version.

    The version comes from version.json (CUDA >= 11.1) or version.txt; a toolkit with
    neither (one assembled from NVIDIA's pip wheels, say) is asked with ``nvcc --version``
    on a live system.
    """
    default_target = root.realpath("usr/local/cuda") if root.exists("usr/local/cuda") else None
    found: list[dict[str, t.Any]] = []
    for path in root.glob("usr/local/cuda-*"):
        if not root.isdir(path):
            continue
        full = toolkit_version(root, path)
        nvcc = f"{path}/bin/nvcc"
        if full is None and root.live and root.is_executable(nvcc):
            result = run([nvcc, "--version"])
            if result is not None and result.rc == 0:
                full = parse_nvcc_version(result.out)
        if full is None:
            match = re.search(r"cuda-([0-9]+\.[0-9]+)\Z", path)
            if not match:
                continue
            full = match.group(1)
        found.append(
            {
                "version": _major_minor(full),
                "full_version": full,
                "path": path,
                "nvcc": nvcc if root.is_executable(nvcc) else None,
                "source": "nvidia",
                "default": default_target == root.realpath(path),
            }
        )
    debian_toolkit = distro_packages.get("nvidia-cuda-toolkit")
    if debian_toolkit:
        # Debian/Ubuntu: '12.4.131~12.4.1-1' -> 12.4.131; the toolkit lives under /usr.
        match = re.match(r"(?:\d+:)?(\d+\.\d+(?:\.\d+)?)", debian_toolkit)
        if match:
            full = match.group(1)
            found.append(
                {
                    "version": _major_minor(full),
                    "full_version": full,
                    "path": "/usr/lib/nvidia-cuda-toolkit" if root.isdir("usr/lib/nvidia-cuda-toolkit") else "/usr",
                    "nvcc": "/usr/bin/nvcc" if root.is_executable("usr/bin/nvcc") else None,
                    "source": "distro",
                    "default": default_target is None and root.is_executable("usr/bin/nvcc"),
                }
            )
    found.sort(key=lambda tk: tuple(int(p) for p in tk["full_version"].split(".")))
    return found
