# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""CUDA toolkits present on a host (NVIDIA's /usr/local/cuda-X.Y and distro packages).

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import json
import os
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


_NVCC_DIST_INFO = re.compile(r"nvidia_cuda_nvcc(?:_cu\d+)?-(\d+\.\d+\.\d+)\.dist-info")
_NVCC_DIST_NAME = re.compile(r"nvidia-cuda-nvcc(?:-cu\d+)?")


def wheel_nvcc_version(root: Sysroot, path: str) -> str | None:
    """Full version of a toolkit assembled from NVIDIA's pip wheels: the ``nvidia_cuda_nvcc-<version>.dist-info``
    in the toolkit's ``dist-info/`` (or its top), when it is the only one, its METADATA says the same name and
    version, and its RECORD lists a ``bin/nvcc`` of the size of the toolkit's ``bin/nvcc`` (the nvcc that
    ``nvcc --version`` would run came from that wheel). None otherwise: nvcc is asked."""
    found = [
        (f"{directory}/{name}", match.group(1))
        for directory in (f"{path}/dist-info", path)
        for name in root.listdir(directory)
        for match in [_NVCC_DIST_INFO.fullmatch(name)]
        if match
    ]
    if len(found) != 1:
        return None
    dist_info, version = found[0]
    metadata = _metadata_fields(root.read(dist_info, "METADATA", limit=65536) or "")
    if metadata.get("version") != version or not _NVCC_DIST_NAME.fullmatch(metadata.get("name", "").lower().replace("_", "-")):
        return None
    try:
        size = os.stat(root.path(path, "bin", "nvcc")).st_size
    except OSError:
        return None
    for line in (root.read(dist_info, "RECORD", limit=1024 * 1024) or "").splitlines():
        fields = line.rsplit(",", 2)
        if len(fields) == 3 and ("/" + fields[0]).endswith("/bin/nvcc") and fields[2].isdigit():
            return version if int(fields[2]) == size else None
    return None


def _metadata_fields(text: str) -> dict[str, str]:
    """Name and Version of a core metadata file (its header, up to the first empty line)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("name", "version"):
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


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
    neither (one assembled from NVIDIA's pip wheels, say) on a live system from its nvcc wheel's
    dist-info (``wheel_nvcc_version``), else from ``nvcc --version``.
    """
    default_target = root.realpath("usr/local/cuda") if root.exists("usr/local/cuda") else None
    found: list[dict[str, t.Any]] = []
    for path in root.glob("usr/local/cuda-*"):
        if not root.isdir(path):
            continue
        full = toolkit_version(root, path)
        nvcc = f"{path}/bin/nvcc"
        if full is None and root.live and root.is_executable(nvcc):
            full = wheel_nvcc_version(root, path)
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
