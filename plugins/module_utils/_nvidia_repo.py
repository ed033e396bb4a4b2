# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Package sources for the NVIDIA stack: Debian's non-free components and NVIDIA's CUDA repository.

PRIVATE to the collection: no compatibility promise outside it.

Everything here computes file contents (pure, unit-tested); ``FileSet`` writes
them atomically and says which changed. Nothing edits a file the administrator
owns: Debian's extra components go into a file of our own that carries only the
components the administrator's sources lack, and NVIDIA's repository gets its own
deb822 source with a ``Signed-By`` keyring (no ``apt-key``) or its own ``.repo``
file with ``gpgcheck=1``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import tempfile
import typing as t
from urllib.parse import urlparse

from ansible.module_utils.urls import fetch_url

from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PACKAGE_MANAGER_OPTIONS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS, Runner
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

MANAGED = "# Managed by mlinfra.mlhost: edits here are overwritten.\n"

DEBIAN_COMPONENTS_FILE = "/etc/apt/sources.list.d/mlhost-debian-nonfree.sources"
NVIDIA_COMPONENTS = ("contrib", "non-free", "non-free-firmware")

APT_KEYRING_DIR = "/etc/apt/keyrings"
APT_SOURCE = "/etc/apt/sources.list.d/mlhost-nvidia-cuda.sources"
APT_PIN = "/etc/apt/preferences.d/mlhost-nvidia-cuda"
DNF_REPO = "/etc/yum.repos.d/mlhost-nvidia-cuda.repo"
DNF_KEY = "/etc/pki/rpm-gpg/RPM-GPG-KEY-mlhost-nvidia-cuda"

NVIDIA_REPO_BASE = "https://developer.download.nvidia.com/compute/cuda/repos"


class RepoError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


# Debian's components -----------------------------------------------------------


class AptEntry(t.NamedTuple):
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None
    origin: str


def parse_one_line_sources(text: str, origin: str) -> list[AptEntry]:
    """``deb [options] URI suite component...`` lines (deb-src and comments skipped)."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                continue
            for item in rest[1:close].split():
                key, dummy, value = item.partition("=")
                options[key] = value
            rest = rest[close + 1:].strip()
        parts = rest.split()
        if len(parts) < 2:
            continue
        entries.append(AptEntry(parts[0].rstrip("/"), (parts[1],), tuple(parts[2:]), options.get("signed-by"), origin))
    return entries


def parse_deb822_sources(text: str, origin: str) -> list[AptEntry]:
    """deb822 ``.sources`` stanzas with ``Types: deb`` and ``Enabled`` not ``no``."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += " " + raw.strip()
                continue
            if ":" in raw:
                key, dummy, value = raw.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            entries.append(
                AptEntry(
                    uri.rstrip("/"),
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    fields.get("signed-by") or None,
                    origin,
                )
            )
    return entries


def read_apt_sources(root: str = "/", skip: t.Iterable[str] = ()) -> list[AptEntry]:
    """Every deb entry of the host's apt sources, except files in ``skip``."""
    skip_set = {os.path.join(root, s.lstrip("/")) for s in skip}
    entries: list[AptEntry] = []
    paths = [os.path.join(root, "etc/apt/sources.list")]
    paths += sorted(glob.glob(os.path.join(root, "etc/apt/sources.list.d/*.list")))
    paths += sorted(glob.glob(os.path.join(root, "etc/apt/sources.list.d/*.sources")))
    for path in paths:
        if path in skip_set or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        parse = parse_deb822_sources if path.endswith(".sources") else parse_one_line_sources
        entries.extend(parse(text, "/" + os.path.relpath(path, root)))
    return entries


def debian_components_file(entries: list[AptEntry], codename: str, wanted: t.Sequence[str] = NVIDIA_COMPONENTS) -> str | None:
    """Contents of our components file for the Debian archive entries of ``codename``.

    For each archive entry that carries ``main`` for codename, codename-updates or
    codename-security but lacks some of ``wanted``, a stanza with the same URI, suites
    and Signed-By and only the missing components. None when nothing is missing.
    """
    suites_of_release = {codename, f"{codename}-updates", f"{codename}-security"}
    groups: dict[tuple[str, str | None, tuple[str, ...]], list[str]] = {}
    have: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        for suite in entry.suites:
            if suite in suites_of_release:
                have.setdefault((entry.uri, suite), set()).update(entry.components)
    signed = {(e.uri, s): e.signed_by for e in entries for s in e.suites}
    for (uri, suite), components in sorted(have.items()):
        if "main" not in components:
            continue
        missing = tuple(c for c in wanted if c not in components)
        if missing:
            groups.setdefault((uri, signed.get((uri, suite)), missing), []).append(suite)
    if not groups:
        return None
    stanzas = []
    for (uri, signed_by, missing), suites in groups.items():
        lines = ["Types: deb", f"URIs: {uri}", f"Suites: {' '.join(sorted(suites, key=len))}", f"Components: {' '.join(missing)}"]
        if signed_by:
            lines.append(f"Signed-By: {signed_by}")
        stanzas.append("\n".join(lines) + "\n")
    header = MANAGED + "# Debian's components that carry the NVIDIA driver and CUDA, for the archive entries above.\n"
    return header + "\n".join(stanzas)


# NVIDIA's CUDA repository --------------------------------------------------------


def nvidia_repo_path(distro: dict[str, t.Any], arch: str | None) -> str:
    """'debian12/x86_64', 'ubuntu2404/sbsa', 'rhel9/x86_64', 'fedora42/x86_64' (NVIDIA's layout)."""
    distro_id = distro.get("id")
    version = distro.get("version") or ""
    major = distro.get("major") or ""
    family = distro.get("family")
    if arch in ("x86_64", "amd64"):
        repo_arch = "x86_64"
    elif arch in ("aarch64", "arm64"):
        repo_arch = "sbsa"
    else:
        raise RepoError(f"NVIDIA's CUDA repository has no packages for architecture {arch!r} (x86_64 and aarch64 only).")
    if distro_id == "debian" and major in ("12", "13"):
        name = f"debian{major}"
    elif distro_id == "ubuntu" and version in ("22.04", "24.04"):
        name = "ubuntu" + version.replace(".", "")
    elif distro_id == "fedora" and major:
        name = f"fedora{major}"
    elif family == "redhat" and major in ("8", "9", "10"):
        name = f"rhel{major}"
    else:
        raise RepoError(
            f"NVIDIA's CUDA repository has no tree for {distro.get('name') or distro_id} {version}: supported are "
            "Debian 12/13, Ubuntu 22.04/24.04, RHEL-family 8/9/10 and Fedora. Use source: distro, or repo_url to a mirror."
        )
    if repo_arch == "sbsa" and name.startswith("debian"):
        raise RepoError(f"NVIDIA's CUDA repository has no aarch64 (sbsa) tree for {name}; use source: distro.")
    return f"{name}/{repo_arch}"


def default_repo_url(distro: dict[str, t.Any], arch: str | None) -> str:
    return f"{NVIDIA_REPO_BASE}/{nvidia_repo_path(distro, arch)}/"


def check_repo_url(url: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("https", "http", "file") or (parsed.scheme != "file" and not parsed.netloc):
        raise RepoError(f"repo_url {url!r} is not an http(s):// or file:// URL. Give the repository's base URL.")
    return url if url.endswith("/") else url + "/"


def is_armored(key: bytes) -> bool:
    return key.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")


def check_key(key: bytes, where: str) -> None:
    """A repository key must be an OpenPGP public key, armored or binary."""
    if is_armored(key):
        return
    # A binary OpenPGP public key starts with a public-key packet: tag 6 (old 0x99/0x98, new 0xc6).
    if key[:1] in (b"\x99", b"\x98", b"\xc6"):
        return
    raise RepoError(
        f"{where} is not an OpenPGP public key (neither armored nor binary). Give NVIDIA's repository signing key "
        "(for example the .pub file in the repository's directory)."
    )


def apt_keyring_path(key: bytes) -> str:
    return f"{APT_KEYRING_DIR}/mlhost-nvidia-cuda.{'asc' if is_armored(key) else 'gpg'}"


def apt_source(url: str, keyring: str) -> str:
    """deb822 source of NVIDIA's flat repository (``Suites: /``, no components)."""
    return (
        MANAGED
        + "# NVIDIA's CUDA repository (or a mirror of it), trusted through its own keyring only.\n"
        + f"Types: deb\nURIs: {url}\nSuites: /\nSigned-By: {keyring}\n"
    )


def apt_pin(url: str) -> str | None:
    """Prefer the NVIDIA repository's packages over the distribution's (priority 600), by origin host."""
    host = urlparse(url).hostname
    if not host:
        return None  # a file:// repository has no origin host to pin by
    return MANAGED + f"Package: *\nPin: origin {host}\nPin-Priority: 600\n"


def dnf_repo(url: str) -> str:
    return (
        MANAGED
        + "[mlhost-nvidia-cuda]\n"
        + "name=NVIDIA CUDA repository (mlinfra.mlhost)\n"
        + f"baseurl={url}\n"
        + "enabled=1\n"
        + "gpgcheck=1\n"
        + f"gpgkey=file://{DNF_KEY}\n"
    )


def nvidia_repo_files(pkg_mgr: str, url: str, key: bytes) -> dict[str, bytes | None]:
    """path -> contents (None: the file must not exist) for NVIDIA's repository."""
    if pkg_mgr == "apt":
        keyring = apt_keyring_path(key)
        other = keyring[:-3] + ("gpg" if keyring.endswith("asc") else "asc")
        pin = apt_pin(url)
        return {
            keyring: key,
            other: None,
            APT_SOURCE: apt_source(url, keyring).encode(),
            APT_PIN: pin.encode() if pin else None,
        }
    if pkg_mgr == "dnf":
        return {DNF_KEY: key, DNF_REPO: dnf_repo(url).encode()}
    raise RepoError(f"NVIDIA's repository cannot be configured for package manager {pkg_mgr!r}.")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Writing -------------------------------------------------------------------------


class FileSet:
    """Brings files to wanted contents, atomically, below ``root``; reports what it changed."""

    def __init__(self, root: str = "/") -> None:
        self.root = root

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def current(self, path: str) -> bytes | None:
        try:
            with open(self._path(path), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def differs(self, path: str, wanted: bytes | None) -> bool:
        return self.current(path) != wanted

    def apply(self, path: str, wanted: bytes | None, mode: int = 0o644) -> bool:
        """Write (or remove, for None) ``path``; True when something changed."""
        real = self._path(path)
        if wanted is None:
            if os.path.lexists(real):
                os.unlink(real)
                return True
            return False
        if self.current(path) == wanted and (os.stat(real).st_mode & 0o7777) == mode:
            return False
        directory = os.path.dirname(real)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mlhost-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(wanted)
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return True

    def bring(self, files: dict[str, bytes | None], check_mode: bool, actions: list[str], diffs: list[dict[str, str]],
              mode: int = 0o644) -> bool:
        """Bring each file to its wanted contents (None: absent), naming each change in ``actions`` and ``diffs``.

        In check mode nothing is written; True when something changed (or would).
        """
        changed = False
        for path, wanted in files.items():
            before = self.current(path)
            if before == wanted:
                continue
            changed = True
            diffs.append(text_diff(path, before, wanted))
            if wanted is not None:
                actions.append(f"{'would write' if check_mode else 'wrote'} {path}")
            else:
                actions.append(f"{'would remove' if check_mode else 'removed'} {path}")
            if not check_mode:
                self.apply(path, wanted, mode)
        return changed


def run_module(module: t.Any, worker: t.Callable[..., t.Any], error: type) -> None:
    """main() of nvidia_driver and cuda_toolkit: run the worker, turn its error into fail_json, pass warnings and diff."""
    runner = Runner(module)

    def fetch(url: str) -> bytes:
        response, info = fetch_url(module, url, timeout=60)
        if info.get("status") != 200 or response is None:
            raise error(f"Could not download repo_key {url}: {info.get('msg')} (HTTP {info.get('status')}). Nothing was changed.")
        return response.read()

    try:
        result = worker(module.params, runner, module.check_mode, Sysroot("/"), fetch).run()
    except error as exc:
        details = {k: v for k, v in exc.details.items() if v is not None}
        module.fail_json(msg=exc.msg, commands=[" ".join(c) for c in runner.calls], **details)
    for warning in result.pop("warnings_list", []):
        module.warn(warning)
    diffs = result.pop("diff", None)
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


# Argument spec pieces both NVIDIA modules take.
REPO_OPTIONS: dict[str, dict[str, t.Any]] = {
    "repo_url": {"type": "str", "default": ""},
    "repo_key": {"type": "str", "default": "", "no_log": False},  # a public key's location, not a secret
    "repo_key_sha256": {"type": "str", "default": "", "no_log": False},
}
# The package options every package-installing module takes (doc fragment mlinfra.mlhost.packages), with state.
PACKAGE_OPTIONS: dict[str, dict[str, t.Any]] = {
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    **PACKAGE_MANAGER_OPTIONS,
    **PROXY_OPTIONS,
}


def text_diff(path: str, before: bytes | None, after: bytes | None) -> dict[str, str]:
    def show(data: bytes | None) -> str:
        if data is None:
            return "(absent)\n"
        if b"\0" in data or (data[:1] in (b"\x99", b"\x98", b"\xc6")):
            return f"(binary, sha256 {sha256_hex(data)})\n"
        return data.decode("utf-8", "replace")

    return {"before_header": path, "after_header": path, "before": show(before), "after": show(after)}
