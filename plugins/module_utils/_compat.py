# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Compatibility data: CUDA toolkit releases and the NVIDIA drivers they need.

PRIVATE to the collection: no compatibility promise outside it.

Source: NVIDIA CUDA Toolkit Release Notes, "CUDA Toolkit and Corresponding
Driver Versions" (Linux x86_64, toolkit GA releases). This is the part that
host_facts needs (the highest CUDA a driver supports, as nvidia-smi reports
it); the full table with updates and minor-version compatibility grows here.
"""

from __future__ import annotations

import re

# CUDA toolkit major.minor -> minimum Linux driver of its GA release
CUDA_MIN_DRIVER: dict[str, str] = {
    "11.0": "450.36.06",
    "11.1": "455.23",
    "11.2": "460.27.03",
    "11.3": "465.19.01",
    "11.4": "470.42.01",
    "11.5": "495.29.05",
    "11.6": "510.39.01",
    "11.7": "515.43.04",
    "11.8": "520.61.05",
    "12.0": "525.60.13",
    "12.1": "530.30.02",
    "12.2": "535.54.03",
    "12.3": "545.23.06",
    "12.4": "550.54.14",
    "12.5": "555.42.02",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
}


def version_tuple(version: str) -> tuple[int, ...]:
    """'550.54.14' -> (550, 54, 14). Raises ValueError on anything else."""
    if not re.fullmatch(r"\d+(\.\d+)*", version or ""):
        raise ValueError(f"{version!r} is not a dotted numeric version")
    return tuple(int(part) for part in version.split("."))


def max_cuda_for_driver(driver: str) -> str | None:
    """The highest CUDA (major.minor) whose GA release runs on ``driver``, or None."""
    try:
        have = version_tuple(driver)
    except ValueError:
        return None
    best = None
    for cuda, minimum in CUDA_MIN_DRIVER.items():
        if have >= version_tuple(minimum) and (best is None or version_tuple(cuda) > version_tuple(best)):
            best = cuda
    return best


# PyTorch release (major.minor) -> the CUDA wheel tags published for it on PyTorch's
# wheel index (download.pytorch.org/whl/<tag>), from PyTorch's "previous versions"
# install matrix. Later releases are not guessed: an unknown torch version is an error.
TORCH_CUDA_TAGS: dict[str, list[str]] = {
    "2.0": ["cu117", "cu118"],
    "2.1": ["cu118", "cu121"],
    "2.2": ["cu118", "cu121"],
    "2.3": ["cu118", "cu121"],
    "2.4": ["cu118", "cu121", "cu124"],
    "2.5": ["cu118", "cu121", "cu124"],
    "2.6": ["cu118", "cu124", "cu126"],
    "2.7": ["cu118", "cu126", "cu128"],
    "2.8": ["cu126", "cu128", "cu129"],
    "2.9": ["cu126", "cu128", "cu130"],
}


def tag_cuda(tag: str) -> str:
    """'cu124' -> '12.4'; 'cu118' -> '11.8'; 'cu130' -> '13.0'."""
    match = re.fullmatch(r"cu(\d{2})(\d)", tag or "")
    if not match:
        raise ValueError(f"{tag!r} is not a CUDA wheel tag (cuXYZ, for example cu124)")
    return f"{int(match.group(1))}.{match.group(2)}"


def torch_cuda_tag(torch_version: str, cuda_version: str | None) -> str:
    """The best PyTorch wheel tag for ``torch_version`` on a host whose driver supports ``cuda_version``.

    ``cuda_version`` None (no NVIDIA driver) gives 'cpu'. The tag is the newest one published
    for that torch release whose CUDA the driver supports; none gives 'cpu'. Raises ValueError
    for a torch release with no data here.
    """
    match = re.match(r"^(\d+)\.(\d+)", torch_version or "")
    if not match:
        raise ValueError(f"{torch_version!r} is not a torch version")
    release = f"{match.group(1)}.{match.group(2)}"
    if release not in TORCH_CUDA_TAGS:
        raise ValueError(
            f"No CUDA wheel data for torch {release} (known: {', '.join(TORCH_CUDA_TAGS)}). "
            "Set torch_cuda to an explicit tag (cuXYZ) or cpu."
        )
    if not cuda_version:
        return "cpu"
    have = version_tuple(cuda_version)
    fitting = [tag for tag in TORCH_CUDA_TAGS[release] if version_tuple(tag_cuda(tag)) <= have]
    return max(fitting, key=lambda tag: version_tuple(tag_cuda(tag))) if fitting else "cpu"
