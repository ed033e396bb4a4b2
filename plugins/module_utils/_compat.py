# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Compatibility data: CUDA toolkit releases and the NVIDIA drivers they need.

PRIVATE to the collection: no compatibility promise outside it.

Sources: NVIDIA CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and
Corresponding Driver Versions" (Linux x86_64, GA and update releases) and
Table 2 (minor-version compatibility); PyTorch's install matrix for the CUDA
wheel tags of each torch release. docs/compatibility.md lists them. A version
that is not in these tables is an error, never a guess: there is no CUDA 12.7.
"""

from __future__ import annotations

import re
import typing as t

# ASCII digits only ([0-9], never \d or str.isdigit(), which take '５'); full matches, so no trailing newline.
_CUDA_VERSION = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")
_DRIVER = re.compile(r"[0-9]{3}(?:\.[0-9]{1,3}){1,2}")
_TORCH_VERSION = re.compile(r"([0-9]+)\.([0-9]+)(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?(?:\+[A-Za-z0-9.]+)?")

# The day the tables below were last compared with NVIDIA's release notes. Rows after 13.0 were read in copies of
# NVIDIA's pages kept in public repositories (the stored copies of NVIDIA's own pages end before Table 3); 13.5 is
# not listed: its driver branch and version string were not found on 2026-12-02, so the package source decides.
CUDA_RELEASES_CHECKED = "2026-12-02"

# CUDA toolkit release (major.minor.update) -> minimum Linux x86_64 driver
# (release notes, Table 3). 11.0.2 is 11.0's GA; 11.0.1 was a release candidate.
CUDA_RELEASES: dict[str, str] = {
    "11.0.2": "450.51.05", "11.0.3": "450.51.06",
    "11.1.0": "455.23", "11.1.1": "455.32",
    "11.2.0": "460.27.03", "11.2.1": "460.32.03", "11.2.2": "460.32.03",
    "11.3.0": "465.19.01", "11.3.1": "465.19.01",
    "11.4.0": "470.42.01", "11.4.1": "470.57.02", "11.4.2": "470.57.02", "11.4.3": "470.82.01", "11.4.4": "470.82.01",
    "11.5.0": "495.29.05", "11.5.1": "495.29.05", "11.5.2": "495.29.05",
    "11.6.0": "510.39.01", "11.6.1": "510.47.03", "11.6.2": "510.47.03",
    "11.7.0": "515.43.04", "11.7.1": "515.65.01",
    "11.8.0": "520.61.05",
    "12.0.0": "525.60.13", "12.0.1": "525.85.12",
    "12.1.0": "530.30.02", "12.1.1": "530.30.02",
    "12.2.0": "535.54.03", "12.2.1": "535.86.09", "12.2.2": "535.104.05",
    "12.3.0": "545.23.06", "12.3.1": "545.23.08", "12.3.2": "545.23.08",
    "12.4.0": "550.54.14", "12.4.1": "550.54.15",
    "12.5.0": "555.42.02", "12.5.1": "555.42.06",
    "12.6.0": "560.28.03", "12.6.1": "560.35.03", "12.6.2": "560.35.03", "12.6.3": "560.35.05",
    "12.8.0": "570.26", "12.8.1": "570.124.06",
    "12.9.0": "575.51.03", "12.9.1": "575.57.08",
    "13.0.0": "580.65.06", "13.0.1": "580.82.07", "13.0.2": "580.95.05",
    "13.1.0": "590.44.01", "13.1.1": "590.48.01",
    "13.2.0": "595.45.04", "13.2.1": "595.58.03", "13.2.2": "595.71.05",
    # 13.3: from third-party quotes of Table 3 (the runfiles' bundled driver agrees); NVIDIA's own page was not read.
    "13.3.0": "610.43.02", "13.3.1": "610.43.02",
    # From 13.4 NVIDIA gives a driver branch, not a minimum release ("Corresponding driver branch": 13.4 R615; update
    # releases of a minor use the same branch), and numbers the GA 13.4.1 (13.4.0 was a developer preview with its
    # own driver; the third digit is a build number): a bare branch here means any driver of that branch or newer.
    "13.4.1": "615", "13.4.2": "615",
}

# CUDA major -> minimum driver for minor-version compatibility (release notes, Table 2):
# an application built with any 12.x toolkit runs on a 525.60.13+ driver, without
# the features that need a newer one (PTX JIT of newer PTX among them).
MINOR_VERSION_COMPAT: dict[str, str] = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}

# CUDA toolkit major.minor -> minimum Linux driver of its GA release (listed first above)
CUDA_MIN_DRIVER: dict[str, str] = {}
for _release, _driver in CUDA_RELEASES.items():
    CUDA_MIN_DRIVER.setdefault(_release.rsplit(".", 1)[0], _driver)


# NVIDIA data-center driver branches: designation and end of life (year-month).
# Source: NVIDIA Data Center Drivers, "Supported Drivers and CUDA Toolkit Versions"
# (the R620 edition lists R580, R595 and R620, the R615 edition R535, R580, R595 and R610; earlier editions the
# older ones).
# "ltsb" long-term support, "pb" production, "nfb" new feature. A branch that is not
# here is still installable; the module only cannot say whether it is supported.
DRIVER_BRANCHES: dict[str, dict[str, str]] = {
    "470": {"designation": "ltsb", "eol": "2024-07"},
    "525": {"designation": "pb", "eol": "2023-12"},
    "535": {"designation": "ltsb", "eol": "2026-06"},
    "550": {"designation": "pb", "eol": "2025-04"},
    "570": {"designation": "pb", "eol": "2026-02"},
    "580": {"designation": "ltsb", "eol": "2028-06"},
    "595": {"designation": "pb", "eol": "2027-03"},
    "610": {"designation": "nfb", "eol": "2026-08"},
    "620": {"designation": "ltsb", "eol": "2029-09"},  # the R620 edition (checked 2026-12-02); R615/R616 not listed
}

# NVIDIA's CUDA repository signing keys, per repository tree (NVIDIA's layout under
# https://developer.download.nvidia.com/compute/cuda/repos/<tree>/<arch>/): the key
# file in the tree's directory and the fingerprints it may carry. Used when repo_key
# is empty; a mirror with its own key passes repo_key and repo_key_fingerprints, and
# repo_key_fingerprints replaces these when NVIDIA rotates a key before this data does.
# Checked 2026-12-02 against NVIDIA/cuda-repo-management issues #30, #34, #39 (the key
# ids, which tree is signed by which) and the fingerprints that scripts pinning these
# keys carry (third-party; they agree with NVIDIA's key ids). A tree not listed (rhel10,
# Fedora: fingerprints not confirmed) needs repo_key and repo_key_fingerprints.
NVIDIA_REPO_KEYS_CHECKED = "2026-12-02"
_KEY_2022 = ("3bf863cc.pub", ("EB693B3035CD5710E231E123A4B469963BF863CC",))  # RSA 4096, SHA-1 bound; replaced 7FA2AF80 in April 2022
_KEY_RPM = ("D42D0685.pub", ("610C7B14E068A878070DA4E99CD0A493D42D0685",))  # rpm gpg-pubkey-d42d0685-62589a51
NVIDIA_REPO_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "debian12": _KEY_2022,
    "ubuntu2204": _KEY_2022,
    "ubuntu2404": _KEY_2022,
    # Debian 13's apt rejects SHA-1 bound keys from 2026-02-01; NVIDIA signs only the debian13 tree with this key (#39).
    "debian13": ("8793F200.pub", ("02182E60104FCDC26EAE1B8597A5D4CB8793F200",)),
    "rhel8": _KEY_RPM,
    "rhel9": _KEY_RPM,
}


def nvidia_repo_key(tree: str) -> tuple[str, tuple[str, ...]] | None:
    """(key file, fingerprints) NVIDIA publishes for a repository tree ('debian12', 'rhel9'), or None when not known here."""
    return NVIDIA_REPO_KEYS.get(tree)


DESIGNATIONS = {"ltsb": "long-term support branch", "pb": "production branch", "nfb": "new feature branch"}


def branch_of(driver: str) -> str:
    """'535.261.03' -> '535'; '550' -> '550'. Raises ValueError on anything else."""
    return str(version_tuple(driver)[0])


def branch_status(branch: str, today: str) -> dict[str, str | bool | None]:
    """{designation, eol, eol_passed} for a branch on ``today`` (YYYY-MM or YYYY-MM-DD)."""
    data = DRIVER_BRANCHES.get(str(branch))
    if not data:
        return {"designation": None, "eol": None, "eol_passed": None}
    return {
        "designation": DESIGNATIONS[data["designation"]],
        "eol": data["eol"],
        "eol_passed": today[:7] > data["eol"],
    }


def branch_latest(branch: str) -> str:
    """The driver a branch stands for in planning: its newest release, ``<branch>.999.99``.

    A branch pin installs the branch's newest driver, so planning compares CUDA's minimum
    against the branch as a whole: branch 550 runs CUDA 12.4 (550.54.14), branch 535 does not.
    """
    if not re.fullmatch(r"[0-9]{3}", str(branch)):
        raise ValueError(f"{branch!r} is not a driver branch (three digits, for example 550)")
    return f"{branch}.999.99"


def version_tuple(version: str) -> tuple[int, ...]:
    """'550.54.14' -> (550, 54, 14). Raises ValueError on anything else (ASCII digits only: not '５５０')."""
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise ValueError(f"{version!r} is not a dotted numeric version")
    return tuple(int(part) for part in version.split("."))


def driver_tuple(driver: str, name: str = "driver") -> tuple[int, ...]:
    """An NVIDIA Linux driver version ('550.54.14', '570.26') as a tuple; ValueError naming ``name`` otherwise."""
    if not isinstance(driver, str) or not _DRIVER.fullmatch(driver):
        raise ValueError(
            f"{name} {driver!r} is not an NVIDIA driver version (three digits, then one or two dotted parts, "
            "for example 550.54.14)"
        )
    return version_tuple(driver)


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
# install matrix. python_env reads the index itself (_torch_wheels): this table is only
# its fallback when the index cannot be read, and the list of tags torch_cuda takes
# without asking. Later releases are not guessed here: the index knows them.
TORCH_CUDA_TAGS_CHECKED = "2025-10-15"  # current as of torch 2.9 (released that day); not extended since
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


# The lowest compute capability of each GPU architecture (_gpu_ids' names): the one a
# host's oldest GPU of that architecture may have (Maxwell GM107 5.0, Pascal P100 6.0,
# Ampere A100 8.0, Blackwell B200 10.0). NVIDIA's CUDA GPUs compute capability table.
ARCHITECTURE_MIN_CC: dict[str, tuple[int, int]] = {
    "maxwell": (5, 0), "pascal": (6, 0), "volta": (7, 0), "turing": (7, 5), "ampere": (8, 0), "ada": (8, 9),
    "hopper": (9, 0), "blackwell": (10, 0),
}

# The oldest compute capability PyTorch's default CUDA wheels still carry kernels for, where
# a build dropped older ones: (first torch release, first CUDA of the tag, lowest compute
# capability). A rule holds for that torch release and every later one, and for that CUDA
# and every later one; a build no rule names keeps Maxwell (5.0). Checked 2026-12-02:
# PyTorch 2.8.0 release notes ("Removed support for Maxwell, Pascal ... with CUDA 12.8 and
# 12.9 builds"; the 2.8 cu128 arch list is sm_70..sm_120, Volta kept), pytorch/pytorch#157517
# (Maxwell/Pascal/Volta deprecation, CUDA 13 cannot target them), pytorch/pytorch#172352 and
# the dev-discuss post "Dropping Volta support from CUDA-12.8 binaries for release 2.11"
# (2.11 cu128+: Turing and newer; cu126 keeps 5.0..9.0), pytorch/pytorch#182250 (measured
# get_arch_list(): 2.10+cu128 from sm_70, 2.11+cu128 from sm_75, 2.11+cu126 from sm_50).
TORCH_ARCH_FLOORS_CHECKED = "2026-12-02"
TORCH_ARCH_FLOORS: list[tuple[str, str, tuple[int, int]]] = [
    ("2.8", "12.8", (7, 0)),
    ("2.9", "13.0", (7, 5)),
    ("2.11", "12.8", (7, 5)),
]


def torch_build_min_cc(torch_release: str, tag: str) -> tuple[int, int]:
    """The lowest compute capability the default torch ``torch_release`` ('2.9') wheels of ``tag`` ('cu128') run on."""
    have_torch, have_cuda = version_tuple(torch_release)[:2], version_tuple(tag_cuda(tag))
    floors = [cc for torch, cuda, cc in TORCH_ARCH_FLOORS
              if have_torch >= version_tuple(torch) and have_cuda >= version_tuple(cuda)]
    return max(floors, default=(5, 0))


def tag_cuda(tag: str) -> str:
    """'cu124' -> '12.4'; 'cu118' -> '11.8'; 'cu130' -> '13.0'."""
    match = re.fullmatch(r"cu([0-9]{2})([0-9])", tag) if isinstance(tag, str) else None
    if not match:
        raise ValueError(f"{tag!r} is not a CUDA wheel tag (cuXYZ, for example cu124)")
    return f"{int(match.group(1))}.{match.group(2)}"


def torch_cuda_tag(torch_version: str, cuda_version: str | None) -> str:
    """The best PyTorch wheel tag for ``torch_version`` on a host whose driver supports ``cuda_version``.

    ``cuda_version`` None (no NVIDIA driver) gives 'cpu', for any torch release. The tag is the
    newest one published for that torch release whose CUDA the driver supports; none gives 'cpu'.
    Raises ValueError for a torch release with no data here (python_env reads the index instead).
    """
    match = _TORCH_VERSION.fullmatch(torch_version) if isinstance(torch_version, str) else None
    if not match:
        raise ValueError(f"torch_version {torch_version!r} is not a torch version (for example 2.5.1, 2.5.1+cu124)")
    release = f"{match.group(1)}.{match.group(2)}"
    if not cuda_version:
        return "cpu"  # no driver: cpu, whatever the torch release
    if release not in TORCH_CUDA_TAGS:
        raise ValueError(
            f"No CUDA wheel data for torch {release} (known: {', '.join(TORCH_CUDA_TAGS)}, checked {TORCH_CUDA_TAGS_CHECKED}). "
            "Set torch_cuda to an explicit tag (cuXYZ) or cpu."
        )
    if not isinstance(cuda_version, str) or not _CUDA_VERSION.fullmatch(cuda_version):
        raise ValueError(f"cuda_version {cuda_version!r} is not a CUDA version (major.minor, for example 12.4), nor empty for no driver")
    have = version_tuple(cuda_version)
    fitting = [tag for tag in TORCH_CUDA_TAGS[release] if version_tuple(tag_cuda(tag)) <= have]
    return max(fitting, key=lambda tag: version_tuple(tag_cuda(tag))) if fitting else "cpu"


def _cuda_key(cuda: str, name: str = "") -> str:
    """'12.4' -> '12.4.0' (the GA); '12.4.1' stays; anything unknown raises ValueError (naming ``name`` when given)."""
    if not isinstance(cuda, str) or not _CUDA_VERSION.fullmatch(cuda):
        raise ValueError(
            f"{(name + ' ') if name else ''}{cuda!r} is not a CUDA version (major.minor or major.minor.update, for example 12.4)"
        )
    parts = cuda.split(".")
    key = ".".join(parts) if len(parts) == 3 else ".".join(parts) + ".0"
    if key not in CUDA_RELEASES:
        if len(parts) == 2 and any(r.startswith(cuda + ".") for r in CUDA_RELEASES):
            key = min((r for r in CUDA_RELEASES if r.startswith(cuda + ".")), key=version_tuple)
        else:
            known = sorted({".".join(r.split(".")[:2]) for r in CUDA_RELEASES}, key=version_tuple)
            raise ValueError(f"CUDA {cuda} does not exist or is not known here (known: {', '.join(known)}).")
    return key


def newest_cuda() -> str:
    """The newest CUDA release in the data ('13.0.2')."""
    return max(CUDA_RELEASES, key=version_tuple)


def cuda_newer_than_data(cuda: str) -> bool:
    """Is ``cuda`` a release after the newest one in the data (a newer minor, or a newer update of the newest minor)?

    Such a release may exist (NVIDIA releases every few months; the data was checked on CUDA_RELEASES_CHECKED): where
    the package source can be read, the source decides. A release inside the data's range that the data does not
    list (12.7) does not exist. Shapes other than major.minor[.update] are not newer (``_cuda_key`` refuses them)."""
    if not isinstance(cuda, str) or not _CUDA_VERSION.fullmatch(cuda):
        return False
    asked = version_tuple(cuda)
    newest = version_tuple(newest_cuda())
    if asked[:2] != newest[:2]:
        return asked[:2] > newest[:2]
    return len(asked) == 3 and asked > newest


def cuda_min_driver(cuda: str) -> str:
    """The minimum Linux driver for a CUDA toolkit release ('12.4' -> '550.54.14')."""
    return CUDA_RELEASES[_cuda_key(cuda, "cuda")]


def cuda_driver_compatible(driver: str, cuda: str, minor_version_compat: bool = False) -> bool:
    """Can ``driver`` run toolkit ``cuda``? With ``minor_version_compat``, by the major's floor instead."""
    have = driver_tuple(driver)
    key = _cuda_key(cuda, "cuda")
    if not isinstance(minor_version_compat, bool):
        raise ValueError(f"minor_version_compat must be true or false, got {minor_version_compat!r}")
    if minor_version_compat:
        major = key.split(".")[0]
        return have >= version_tuple(MINOR_VERSION_COMPAT[major])
    return have >= version_tuple(cuda_min_driver(cuda))


def filter_text(name: str, value: t.Any, optional: bool = False) -> str | None:
    """A filter argument that must be a string (None or '' allowed when ``optional``): no str() of anything."""
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str):
        hint = f": quote versions in YAML ('{value}', not {value})" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise TypeError(f"argument {name} must be a string{' or none' if optional else ''}, got {type(value).__name__} {value!r}{hint}")
    return value
