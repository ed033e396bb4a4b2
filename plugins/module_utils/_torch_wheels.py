# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Which PyTorch wheel build (cpu, cuXYZ) a host gets: read from the wheel index, not from a table.

PRIVATE to the collection: no compatibility promise outside it.

PyTorch's index (https://download.pytorch.org/whl, or a mirror of it) has one PEP 503 simple page
per build, ``<base>/<tag>/torch/`` (tags cpu, cu126, cu128, ...), and one for all of them,
``<base>/torch/``; their wheel names carry the build as a local version label
(``torch-2.9.1+cu128-cp311-cp311-manylinux_2_28_x86_64.whl``). ``builds()`` keeps the builds of the
pinned torch for the target's Python and machine; ``choose()`` takes the newest CUDA build the
host's driver runs and its oldest GPU has kernels in (``_compat.torch_build_min_cc``), else cpu.
"""

from __future__ import annotations

import html
import json
import re
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils._compat import CUDA_MIN_DRIVER, tag_cuda, torch_build_min_cc, version_tuple

PEP691 = "application/vnd.pypi.simple.v1+json"
_CUDA_TAG = re.compile(r"cu[0-9]{3}")
_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"']+)["'][^>]*>""", re.IGNORECASE)


def page_files(text: str) -> list[str]:
    """The file names a simple page lists: PEP 691 JSON (``files[].filename``) or PEP 503 HTML (the anchors' hrefs)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return []
        return [str(f.get("filename", "")) for f in data.get("files", []) if isinstance(f, dict)]
    names = []
    for href in _HREF.findall(text):
        path = urllib.parse.urlsplit(html.unescape(href)).path
        names.append(urllib.parse.unquote(path.rsplit("/", 1)[-1]))
    return names


def _fits(tags: t.Iterable[t.Any], python_tag: str, machine: str) -> bool:
    """Does a wheel's tag set hold one for CPython ``python_tag`` (cp311) on Linux ``machine`` (x86_64, aarch64)?"""
    for tag in tags:
        if tag.interpreter != python_tag or tag.abi not in (python_tag, "abi3", "none"):
            continue
        if tag.platform == f"linux_{machine}" or (tag.platform.startswith("manylinux") and tag.platform.endswith("_" + machine)):
            return True
    return False


def builds(names: t.Iterable[str], specifier: t.Any, python_tag: str, machine: str,
           page_tag: str | None = None) -> dict[str, set[str]]:
    """{torch public version: {build tags}} of the torch wheels in ``names`` that ``specifier`` takes, for this Python
    and machine. A wheel without a local label counts as ``page_tag`` (a per-build page lists some that way), and is
    left out on the page of all builds (PyPI's default build, not one of PyTorch's tags)."""
    utils = rq.packaging_part("utils")
    found: dict[str, set[str]] = {}
    for name in names:
        if not name.startswith("torch-") or not name.endswith(".whl"):
            continue
        try:
            dist, version, _build, tags = utils.parse_wheel_filename(name)
        except (ValueError, TypeError):  # InvalidWheelFilename and InvalidVersion are ValueErrors
            continue
        if dist != "torch" or not specifier.contains(version.public):
            continue
        label = version.local or page_tag
        if not label or not (label == "cpu" or _CUDA_TAG.fullmatch(label)) or not _fits(tags, python_tag, machine):
            continue
        found.setdefault(version.public, set()).add(label)
    return found


def newest(found: dict[str, set[str]]) -> tuple[str, set[str]] | None:
    """(version, its builds) of the newest version in ``builds()``'s answer: the one the installer will take."""
    if not found:
        return None
    version_cls = rq.packaging_part("version").Version
    best = max(found, key=version_cls)
    return best, found[best]


def choose(torch_version: str, tags: set[str], host_cuda: str | None, min_cc: tuple[int, int] | None) -> tuple[str | None, list[str]]:
    """(the tag, why the newer CUDA builds were passed over). The newest cuXYZ whose CUDA is at most ``host_cuda``
    and whose kernels start at or below ``min_cc`` (the host's oldest GPU; None: not known), else cpu when the index
    has it, else None."""
    release = ".".join(torch_version.split(".")[:2])
    passed: list[str] = []
    have = version_tuple(host_cuda) if host_cuda else None
    for tag in sorted((t_ for t_ in tags if t_ != "cpu"), key=lambda t_: version_tuple(tag_cuda(t_)), reverse=True):
        if have is None or version_tuple(tag_cuda(tag)) > have:
            passed.append(f"{tag} needs a driver for CUDA {tag_cuda(tag)}" + (f" (this one runs up to {host_cuda})" if have else ""))
            continue
        floor = torch_build_min_cc(release, tag)
        if min_cc is not None and min_cc < floor:
            passed.append(f"{tag} has no kernels for compute capability {min_cc[0]}.{min_cc[1]} "
                          f"(torch {release} {tag} builds start at {floor[0]}.{floor[1]})")
            continue
        return tag, passed
    return ("cpu" if "cpu" in tags else None), passed


def installed_label(version: str | None) -> str | None:
    """'2.5.1+cu124' -> 'cu124'; '2.5.1' -> None (PyPI's default build)."""
    if not version or "+" not in version:
        return None
    return version.split("+", 1)[1]


def candidate_tags(host_cuda: str) -> list[str]:
    """The cuXYZ tags a driver for ``host_cuda`` could run, newest first: every CUDA release of the data up to it, and
    the minors after the data's newest up to it (a driver newer than the data, read from nvidia-smi)."""
    have = version_tuple(host_cuda)[:2]
    known = {version_tuple(cuda)[:2] for cuda in CUDA_MIN_DRIVER}
    newest_known = max(known)
    if have[0] == newest_known[0]:
        known |= {(have[0], minor) for minor in range(newest_known[1] + 1, have[1] + 1)}
    return [f"cu{major}{minor}" for major, minor in sorted(known, reverse=True) if (major, minor) <= have and major >= 11]
