# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Package sources for the NVIDIA stack: Debian's non-free components and NVIDIA's CUDA repository.

PRIVATE to the collection: no compatibility promise outside it.

Everything here computes file contents (pure, unit-tested) and checks the repository
options both NVIDIA modules take; ``FileSet.plan`` says which files differ from what
is wanted and ``FileSet.apply`` writes exactly those, atomically. Nothing edits a file
the administrator owns: Debian's extra components go into a file of our own that
carries only the components the administrator's sources lack, and NVIDIA's repository
gets its own deb822 source with a ``Signed-By`` keyring (no ``apt-key``) or its own
``.repo`` file with ``gpgcheck=1``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import typing as t
from urllib.parse import urlsplit

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _distro, _files, _openpgp
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_url
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PACKAGE_MANAGER_OPTIONS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS
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
MAX_TEXT = 4096  # characters: no option of these modules is longer
NOTHING = "Nothing was changed."


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
        raise ModuleError(f"NVIDIA's CUDA repository has no packages for architecture {arch!r} (x86_64 and aarch64 only).")
    if distro_id == "debian" and major in ("12", "13"):
        name = f"debian{major}"
    elif distro_id == "ubuntu" and version in ("22.04", "24.04"):
        name = "ubuntu" + version.replace(".", "")
    elif distro_id == "fedora" and major:
        name = f"fedora{major}"
    elif family == "redhat" and major in ("8", "9", "10"):
        name = f"rhel{major}"
    else:
        raise ModuleError(
            f"NVIDIA's CUDA repository has no tree for {distro.get('name') or distro_id} {version}: supported are "
            "Debian 12/13, Ubuntu 22.04/24.04, RHEL-family 8/9/10 and Fedora. Use source: distro, or repo_url to a mirror."
        )
    if repo_arch == "sbsa" and name.startswith("debian"):
        raise ModuleError(f"NVIDIA's CUDA repository has no aarch64 (sbsa) tree for {name}; use source: distro.")
    return f"{name}/{repo_arch}"


def default_repo_url(distro: dict[str, t.Any], arch: str | None) -> str:
    return f"{NVIDIA_REPO_BASE}/{nvidia_repo_path(distro, arch)}/"


def check_repo_url(url: str, option: str = "repo_url") -> str:
    """``url`` with a trailing slash, after checking it is an http(s) URL with a host or a file:// URL with a path."""
    shown = mask_url(url or "")
    problem = None
    try:
        parsed = urlsplit(url or "")
        parsed.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
        host = parsed.hostname
    except ValueError as exc:
        problem = f"cannot be parsed ({exc})"
    else:
        if parsed.scheme not in ("https", "http", "file"):
            problem = f"has scheme {parsed.scheme + '://' if parsed.scheme else 'none'}"
        elif parsed.scheme != "file" and not host:
            problem = "has no host"
        elif parsed.scheme == "file" and (parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/")):
            problem = "has no absolute path (file:///path: three slashes)"
        elif re.search(r"\s", url):
            problem = "holds white space"
    if problem:
        raise ModuleError(
            f"{option} {shown!r} is not an http(s):// or file:// URL: it {problem}. Give the repository's base URL, for example "
            f"{NVIDIA_REPO_BASE}/debian12/x86_64/ or file:///srv/mirror/nvidia/debian12/x86_64/. {NOTHING}"
        )
    return url if url.endswith("/") else url + "/"


def check_plain_text(params: dict[str, t.Any], names: t.Iterable[str]) -> None:
    """Each option in ``names`` is one line of text: no NUL byte, line break or other control character, not overlong."""
    for name in names:
        value = params.get(name)
        if not isinstance(value, str):
            continue
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ModuleError(
                f"{name} holds a NUL byte, a line break or another control character: give its value on one line without them. {NOTHING}"
            )
        if len(value) > MAX_TEXT:
            raise ModuleError(f"{name} is {len(value)} characters long; at most {MAX_TEXT} are taken. {NOTHING}")


def check_package_options(params: dict[str, t.Any]) -> None:
    for key in ("cache_valid_time", "lock_timeout"):
        value = params.get(key)
        if isinstance(value, int) and value < 0:
            raise ModuleError(f"{key} must be 0 or more seconds, got {value}. {NOTHING}")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def check_fingerprints(values: t.Any, option: str = "repo_key_fingerprints") -> list[str]:
    """The fingerprints given, normalized (upper-case hex, no spaces); a short key id or other text is refused."""
    if values in (None, "", []):
        return []
    if isinstance(values, str):
        values = [values]
    found = []
    for index, value in enumerate(values):
        fpr = _openpgp.normalize_fingerprint(value) if isinstance(value, str) else None
        if fpr is None:
            shown = value if isinstance(value, str) and len(value) <= 80 else f"a {type(value).__name__}"
            raise ModuleError(
                f"{option}[{index}] {shown!r} is not a full key fingerprint: give the 40 hexadecimal digits (64 for a v6 key) "
                "that `gpg --show-keys KEYFILE` prints, spaces allowed; a short key id (8 or 16 digits) can be forged. "
                f"{NOTHING}"
            )
        found.append(fpr)
    return found


def check_repo_options(params: dict[str, t.Any]) -> None:
    """repo_url, repo_key, repo_key_sha256 and repo_key_fingerprints, as given (no host read): every shape a user can get wrong."""
    check_plain_text(params, ("repo_url", "repo_key", "repo_key_sha256"))
    if params.get("repo_url"):
        check_repo_url(params["repo_url"])
    fingerprints = check_fingerprints(params.get("repo_key_fingerprints"))
    key = params.get("repo_key") or ""
    sha = params.get("repo_key_sha256") or ""
    if sha and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise ModuleError(f"repo_key_sha256 must be 64 hexadecimal digits (sha256sum's output), got {len(sha)} characters. {NOTHING}")
    if sha and not key:
        raise ModuleError(f"repo_key_sha256 is set but repo_key is empty: set repo_key to the key it is the checksum of. {NOTHING}")
    if not key:
        return
    if _SCHEME.match(key):
        shown = mask_url(key)
        try:
            parsed = urlsplit(key)
            parsed.port  # noqa: B018
            host = parsed.hostname
        except ValueError as exc:
            raise ModuleError(f"repo_key {shown!r} is a URL that cannot be parsed ({exc}): give an https URL or a path. {NOTHING}") from exc
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
                raise ModuleError(f"repo_key {shown!r} is a file:// URL without an absolute path (file:///path: three slashes). {NOTHING}")
            return
        if parsed.scheme not in ("https", "http"):
            raise ModuleError(
                f"repo_key {shown!r} has scheme {parsed.scheme}://: give an https URL (with repo_key_fingerprints or "
                f"repo_key_sha256), a file:// URL or an absolute path on the host. {NOTHING}"
            )
        if not host:
            raise ModuleError(f"repo_key {shown!r} has no host. {NOTHING}")
        if not (sha or fingerprints):
            what = "a plain-http URL" if parsed.scheme == "http" else "a URL"
            raise ModuleError(
                f"repo_key {shown} is {what} without repo_key_fingerprints or repo_key_sha256: give the key's fingerprint "
                f"(or its sha256), so the downloaded key is verified. {NOTHING}"
            )
    elif not key.startswith("/"):
        raise ModuleError(f"repo_key {key!r} is neither an absolute path on the host nor a URL. {NOTHING}")


class KeyPlan(t.NamedTuple):
    """Where the repository key comes from and which fingerprints it must have (empty: none asked)."""

    location: str
    fingerprints: tuple[str, ...]
    origin: str  # "repo_key", or "NVIDIA's published key for <tree> (<file>)"
    published: bool  # the fingerprints are the collection's data, not the user's


def key_plan(params: dict[str, t.Any], distro: dict[str, t.Any], arch: str | None, url: str, reason: str) -> KeyPlan:
    """The key to load for NVIDIA's repository at ``url``: repo_key as given, else the tree's published key.

    With repo_key empty the key file NVIDIA publishes in the tree's directory is taken from ``url`` (NVIDIA's own,
    or a mirror that copies it) and must carry the fingerprint the compatibility data lists for the tree (or
    repo_key_fingerprints, when given). A tree the data does not know needs repo_key."""
    given = tuple(check_fingerprints(params.get("repo_key_fingerprints")))
    if params.get("repo_key"):
        return KeyPlan(params["repo_key"], given, "repo_key", False)
    tree = nvidia_repo_path(distro, arch).split("/", 1)[0]
    published = _compat.nvidia_repo_key(tree)
    if published is None:
        chosen = (f"source: auto chose NVIDIA's CUDA repository because {reason}" if params.get("source") == "auto"
                  else "source: nvidia_repo was set")
        raise ModuleError(
            f"NVIDIA's repository needs repo_key here ({chosen}), and the collection knows no published key for the {tree} "
            "tree. Set repo_key to the repository's signing key (an absolute path on the host, a file:// URL, or an https "
            "URL) and repo_key_fingerprints to its fingerprint"
            + (", or set source: distro" if params.get("source") == "auto" else "")
            + f". {NOTHING}"
        )
    key_file, fingerprints = published
    return KeyPlan(url + key_file, given or fingerprints, f"NVIDIA's published key for {tree} ({key_file})", not given)


def apt_rejects_weak_bindings(distro: dict[str, t.Any]) -> bool:
    """Debian 13 and later: apt (through sqv) rejects keys bound only by SHA-1 signatures from 2026-02-01."""
    try:
        return distro.get("id") == "debian" and int(distro.get("major") or 0) >= 13
    except ValueError:
        return False


def check_key_data(data: bytes, where: str, plan_: KeyPlan | None = None, distro: dict[str, t.Any] | None = None) -> list[str]:
    """The primary key fingerprints of ``data``, after checking it is a public key with the fingerprints asked.

    Every key of the file must be one asked: apt and dnf trust every key of a keyring."""
    try:
        keys = _openpgp.read_keys(data)
    except _openpgp.KeyError_ as exc:
        raise ModuleError(
            f"{where} is not an OpenPGP public key: {exc}. Give the repository's signing key (for NVIDIA's repository the "
            f".pub file in the tree's directory). {NOTHING}"
        ) from exc
    found = [k.fingerprint for k in keys]
    if plan_ and plan_.fingerprints:
        wanted = set(plan_.fingerprints)
        if [f for f in found if f not in wanted] or not wanted & set(found):
            asked = (f"the fingerprint the collection's data lists, checked {_compat.NVIDIA_REPO_KEYS_CHECKED}" if plan_.published
                     else "repo_key_fingerprints")
            raise ModuleError(
                f"{where} holds the key{'s' if len(found) > 1 else ''} {', '.join(_openpgp.grouped(f) for f in found)}, "
                f"not {' or '.join(_openpgp.grouped(f) for f in plan_.fingerprints)} ({asked}). apt and dnf trust every key "
                "of the file, so it must hold only the keys named. If the repository's key was rotated, check the new "
                "fingerprint with its publisher, then set repo_key_fingerprints to it"
                + ("; a mirror that signs with its own key needs repo_key and repo_key_fingerprints" if plan_.published else "")
                + f". {NOTHING}"
            )
    weak = [k for k in keys if k.weak_bindings_only]
    if weak and distro and apt_rejects_weak_bindings(distro):
        raise ModuleError(
            f"{where} holds the key {', '.join(_openpgp.grouped(k.fingerprint) for k in weak)}, bound only by "
            f"{'/'.join(sorted(set(h for k in weak for h in k.binding_hashes)))} signatures: {distro.get('name') or 'Debian 13'}'s "
            "apt rejects such keys (from 2026-02-01). NVIDIA's debian13 tree is signed with a newer key: use it (leave "
            "repo_key empty for NVIDIA's own repository), or have the mirror re-sign with a key bound by SHA-256. "
            f"{NOTHING}"
        )
    return found


def is_armored(key: bytes) -> bool:
    return key.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")


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
    host = urlsplit(url).hostname
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


def _apt_repo_files(url: str, key: bytes) -> dict[str, bytes | None]:
    keyring = apt_keyring_path(key)
    other = keyring[:-3] + ("gpg" if keyring.endswith("asc") else "asc")
    pin = apt_pin(url)
    return {keyring: key, other: None, APT_SOURCE: apt_source(url, keyring).encode(), APT_PIN: pin.encode() if pin else None}


def _dnf_repo_files(url: str, key: bytes) -> dict[str, bytes | None]:
    return {DNF_KEY: key, DNF_REPO: dnf_repo(url).encode()}


REPO_FILES: dict[str, t.Callable[[str, bytes], dict[str, bytes | None]]] = {"apt": _apt_repo_files, "dnf": _dnf_repo_files}


def nvidia_repo_files(pkg_mgr: str, url: str, key: bytes) -> dict[str, bytes | None]:
    """path -> contents (None: the file must not exist) for NVIDIA's repository, in the package manager's format."""
    if pkg_mgr not in REPO_FILES:
        raise ModuleError(f"NVIDIA's repository cannot be configured for package manager {pkg_mgr!r}.")
    return REPO_FILES[pkg_mgr](url, key)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_key(plan_: KeyPlan, params: dict[str, t.Any], fetch: t.Callable[[str], bytes], read: t.Callable[[str], bytes | None],
             distro: dict[str, t.Any] | None = None) -> tuple[bytes, list[str]]:
    """(key data, its fingerprints): the key the plan names (downloaded, or read on the host), checked against
    repo_key_sha256 and the fingerprints asked."""
    source = plan_.location
    shown = mask_url(source)
    where = f"repo_key {shown}" if plan_.origin == "repo_key" else f"{plan_.origin} at {shown}"
    if _SCHEME.match(source) and not source.startswith("file://"):
        data = fetch(source)
    else:
        path = urlsplit(source).path if source.startswith("file://") else source
        data = read(path)
        if data is None:
            fix = ("Copy the key there first" if plan_.origin == "repo_key" else
                   "The mirror lacks NVIDIA's key file: copy it there, or set repo_key and repo_key_fingerprints")
            raise ModuleError(f"{where} does not exist or cannot be read on the host. {fix}. {NOTHING}")
    sha = (params.get("repo_key_sha256") or "").lower()
    if sha and sha256_hex(data) != sha:
        raise ModuleError(
            f"{where} has sha256 {sha256_hex(data)}, not the repo_key_sha256 given ({sha}): "
            "nothing was changed. Check the key's source, then fix repo_key_sha256."
        )
    return data, check_key_data(data, where, plan_, distro)


def source_files(params: dict[str, t.Any], distro: dict[str, t.Any], source: str, pkg_mgr: str, root: Sysroot,
                 fetch: t.Callable[[str], bytes], reason: str = "") -> tuple[dict[str, bytes | None], list[str]]:
    """(path -> wanted contents (None: absent) of the package sources a source needs on this host, the repository
    key's fingerprints): reads the key."""
    if source == "nvidia_repo":
        arch = _distro.arch_fact(root)
        url = check_repo_url(params.get("repo_url") or default_repo_url(distro, arch))
        plan_ = key_plan(params, distro, arch, url, reason)
        data, fingerprints = load_key(plan_, params, fetch, FileSet(root.root).current, distro)
        return nvidia_repo_files(pkg_mgr, url, data), fingerprints
    if distro.get("id") == "debian":
        entries = read_apt_sources(root.root, skip=[DEBIAN_COMPONENTS_FILE])
        content = debian_components_file(entries, distro.get("codename") or "")
        return {DEBIAN_COMPONENTS_FILE: content.encode() if content else None}, []
    return {}, []


# Writing -------------------------------------------------------------------------


class FileChange(t.NamedTuple):
    """One file a plan writes (``after``) or removes (``after`` None), with what it holds now."""

    path: str
    before: bytes | None
    after: bytes | None
    mode: int = 0o644

    @property
    def action(self) -> str:
        return f"{'write' if self.after is not None else 'remove'} {self.path}"

    def diff(self) -> dict[str, str]:
        return text_diff(self.path, self.before, self.after)


class FileSet:
    """Files below ``root``: ``plan`` lists those that differ from what is wanted, ``apply`` brings exactly those."""

    def __init__(self, root: str = "/") -> None:
        self.root = root

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def current(self, path: str) -> bytes | None:
        return _files.read_bytes(self._path(path))

    def plan(self, files: dict[str, bytes | None], mode: int = 0o644) -> list[FileChange]:
        """The changes that bring each file to its wanted contents (None: absent); none for a file already so."""
        changes = []
        for path, wanted in files.items():
            before = self.current(path)
            if before != wanted:
                changes.append(FileChange(path, before, wanted, mode))
        return changes

    def apply(self, changes: t.Iterable[FileChange]) -> None:
        """Write (atomically, with the change's mode) or remove each file of ``changes``."""
        for change in changes:
            real = self._path(change.path)
            if change.after is None:
                if os.path.lexists(real):
                    os.unlink(real)
            else:
                _files.atomic_write(real, change.after, change.mode)


# Argument spec pieces both NVIDIA modules take.
REPO_OPTIONS: dict[str, dict[str, t.Any]] = {
    "repo_url": {"type": "str", "default": "", "no_log": True},  # a mirror's URL can carry user:token@
    # A public key, but its location on a mirror can carry a token (user-info, a signed query): never printed.
    "repo_key": {"type": "str", "default": "", "no_log": True},
    "repo_key_sha256": {"type": "str", "default": "", "no_log": False},
    "repo_key_fingerprints": {"type": "list", "elements": "str", "default": [], "no_log": False},
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
