# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Build-tool profiles and each distribution's own package names for them.

PRIVATE to the collection: no compatibility promise outside it.

Names were checked against each release's archive (Debian 12/13 with
apt-cache in the test bed; the others from the distributions' package
indexes). RHEL-family hosts get explicit packages rather than the
"Development Tools" group, so the installed state can be checked exactly.
"""

from __future__ import annotations

import typing as t

PROFILES = (
    "compilers",
    "cmake",
    "git",
    "download",
    "python_dev",
    "ssl_dev",
    "ffi_dev",
    "pkg_config",
    "kernel_headers",
)

# {KERNEL} is replaced by the running kernel's release (uname -r).
_DEBIAN_FAMILY = {
    "compilers": ["build-essential"],
    "cmake": ["cmake"],
    "git": ["git"],
    "download": ["curl", "wget", "ca-certificates"],
    "python_dev": ["python3-dev", "python3-venv"],
    "ssl_dev": ["libssl-dev"],
    "ffi_dev": ["libffi-dev"],
    "pkg_config": ["pkgconf"],
    "kernel_headers": ["linux-headers-{KERNEL}"],
}
_EL = {
    "compilers": ["gcc", "gcc-c++", "make"],
    "cmake": ["cmake"],
    "git": ["git"],
    # curl-minimal provides curl on EL9+ and Fedora: rpm --whatprovides finds it.
    "download": ["curl", "wget", "ca-certificates"],
    "python_dev": ["python3-devel"],
    "ssl_dev": ["openssl-devel"],
    "ffi_dev": ["libffi-devel"],
    "pkg_config": ["pkgconf-pkg-config"],
    "kernel_headers": ["kernel-devel-{KERNEL}", "kernel-headers"],
}

TABLE: dict[str, dict[str, list[str]]] = {
    "debian12": _DEBIAN_FAMILY,
    "debian13": _DEBIAN_FAMILY,
    "ubuntu22.04": dict(_DEBIAN_FAMILY, pkg_config=["pkg-config"]),  # jammy's pkg-config is the real one
    "ubuntu24.04": _DEBIAN_FAMILY,
    "el8": dict(_EL, python_dev=["python39-devel"]),  # EL8's default python3 is 3.6; 3.9 is the supported stream
    "el9": _EL,
    "el10": _EL,
    "fedora": _EL,
}

_EL_IDS = ("rhel", "rocky", "almalinux", "centos", "ol")


def table_key(distro: dict[str, t.Any]) -> str | None:
    """The TABLE key for a host's distro facts, or None when it has no names here."""
    distro_id = distro.get("id")
    major = distro.get("major") or ""
    version = distro.get("version") or ""
    if distro_id == "debian" and major in ("12", "13"):
        return f"debian{major}"
    if distro_id == "ubuntu" and version in ("22.04", "24.04"):
        return f"ubuntu{version}"
    if distro_id in _EL_IDS and major in ("8", "9", "10"):
        return f"el{major}"
    if distro_id == "fedora":
        return "fedora"
    return None


def supported() -> list[str]:
    return sorted(TABLE)


def resolve(profiles: list[str], distro: dict[str, t.Any], kernel: str | None) -> list[str]:
    """Package names for ``profiles`` on this distro, in profile order, without duplicates.

    Raises ValueError with a message that names the problem and the fix.
    """
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(f"Unknown build_tools profile(s): {', '.join(unknown)}. Valid profiles: {', '.join(PROFILES)}.")
    if not profiles:
        return []
    key = table_key(distro)
    if key is None:
        raise ValueError(
            f"build_tools has no package names for {distro.get('id')} {distro.get('version')}: supported are "
            f"{', '.join(supported())}. Name the packages in extra_packages instead of profiles."
        )
    names: list[str] = []
    for profile in profiles:
        for name in TABLE[key][profile]:
            if "{KERNEL}" in name:
                if not kernel:
                    raise ValueError("The kernel_headers profile needs the running kernel's release, and it is unknown here.")
                name = name.replace("{KERNEL}", kernel)
            if name not in names:
                names.append(name)
    return names
