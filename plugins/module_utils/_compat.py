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
