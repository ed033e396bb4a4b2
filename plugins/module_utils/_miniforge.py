# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The miniforge module's logic: verified installer, batch install, a managed .condarc.

PRIVATE to the collection: no compatibility promise outside it.

Install: the installer (a URL, or a file on the host) is copied to a temp
file beside the prefix, its sha256 checked, and only then run as
``bash installer -b -p prefix``. The prefix must not exist before (or be a
conda base already): a conda base holds its own path in scripts and
shebangs, so it cannot be built under another name and renamed; instead a
failed install (installer error, wrong conda version, a verification that
fails) removes the whole prefix it started, so nothing is left behind.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import secrets
import shutil
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda, _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_url
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Plan, Worker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

MODULE = "mlinfra.mlhost.miniforge"
CONDARC = ".condarc"
CONDARC_HEADER = "# Written by mlinfra.mlhost.miniforge: local changes are replaced on its next run."
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem")
ANACONDA_HOSTS = ("repo.anaconda.com", "repo.continuum.io", "conda.anaconda.org/anaconda", "anaconda.org/anaconda")
PREFIX_EXAMPLE = "/opt/miniforge3 (shared) or /home/alice/miniforge3 (one user)"
SECRET_OPTIONS = ("installer", "index_url", "find_links", "channel_alias", "custom_channels", "channels", "proxy_servers", "proxy_env")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}(?:-[0-9]+)?")
# a channel name: conda-forge, pytorch, nvidia, conda-forge/label/rc
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)*")
_OCTAL = re.compile(r"0?[0-7]{3,4}")
NOTHING = "Nothing was changed."
_CONDA_TOKEN = re.compile(r"/t/[^/\s'\"]+")


def shown(text: str) -> str:
    """A URL as it may be printed: user-info and query masked (mask_url), and conda's /t/<token>/ too."""
    return _CONDA_TOKEN.sub("/t/***", mask_url(text))


# --- checks shared with conda_env ------------------------------------------------------------

def refuse_nul(params: dict[str, t.Any], secret: t.Iterable[str] = SECRET_OPTIONS) -> None:
    """A NUL byte (or a line break in a one-line option) anywhere in the options is refused, naming the option."""
    hidden = set(secret)

    def walk(value: t.Any) -> bool:
        if isinstance(value, str):
            return "\0" in value
        if isinstance(value, dict):
            return any(walk(k) or walk(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(walk(v) for v in value)
        return False

    for key in sorted(params):
        if walk(params[key]):
            value = "" if key in hidden else f" ({str(params[key])[:80]!r})"
            raise ModuleError(f"{key}{value} holds a NUL byte: no path, URL or name may. Give it without one. {NOTHING}")


def text_option(value: t.Any, option: str, example: str) -> str | None:
    """An option that must be one string: a mapping or a list (a YAML slip) is refused naming the option."""
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        raise ModuleError(f"{option} is {kind}, but it takes one string, such as {example}. {NOTHING}")
    text = str(value)
    if any(c in text for c in "\n\r"):
        raise ModuleError(f"{option} holds a line break: give it on one line, such as {example}. {NOTHING}")
    return text


def list_option(value: t.Any, option: str, example: str) -> list[str]:
    """An option that must be a list of strings: a mapping (a YAML slip) is refused naming the option."""
    if value is None:
        return []
    if isinstance(value, dict) or not isinstance(value, (list, tuple)):
        kind = "a mapping" if isinstance(value, dict) else f"a {type(value).__name__}"
        raise ModuleError(f"{option} is {kind}, but it takes a list of strings, such as {example}. {NOTHING}")
    out = []
    for item in value:
        if isinstance(item, (dict, list, tuple)):
            raise ModuleError(f"{option} holds {'a mapping' if isinstance(item, dict) else 'a list'} as an item; each item is one "
                              f"string, such as {example}. {NOTHING}")
        out.append(text_option(item, option, example) or "")
    return out


def parse_url(value: str, option: str, schemes: tuple[str, ...], example: str) -> urllib.parse.SplitResult:
    """``value`` parsed as a URL of one of ``schemes`` (http(s) with a host, file with a path); refused otherwise, masked."""
    masked = shown(value)
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ModuleError(f"{option} {masked!r} is not a valid URL ({exc}). Give one such as {example}. {NOTHING}") from exc
    scheme = parts.scheme.lower()
    if scheme not in schemes or any(c.isspace() for c in value):
        raise ModuleError(f"{option} {masked!r} is not an {' or '.join(s + '://' for s in schemes)} URL. Give one such as {example}. {NOTHING}")
    if scheme in ("http", "https") and not parts.hostname:
        raise ModuleError(f"{option} {masked!r} has no host. Give a URL such as {example}. {NOTHING}")
    if scheme == "file" and (not parts.path.startswith("/") or parts.netloc not in ("", "localhost")):
        raise ModuleError(f"{option} {masked!r} is not a file:// URL of an absolute path (file:///srv/conda-channel). {NOTHING}")
    return parts


def check_channel(channel: t.Any, option: str = "channels") -> str:
    """A conda channel: a name (conda-forge, pytorch), an http(s):// URL or a file:// path; never Anaconda's defaults."""
    text = text_option(channel, option, "conda-forge") or ""
    masked = shown(text)
    bare = _CONDA_TOKEN.sub("", text)  # https://conda.anaconda.org/t/<token>/anaconda is Anaconda's too
    if text == "defaults" or any(host in bare for host in ANACONDA_HOSTS):
        raise ModuleError(
            f"channel {masked!r} in {option} is Anaconda's 'defaults' repository, whose terms of service require a paid licence for "
            f"many organisations. Use conda-forge (or a mirror of it through custom_channels / channel_alias). {NOTHING}"
        )
    if "://" in text:
        parse_url(text, f"channel in {option}", ("http", "https", "file"), "https://mirror.example/conda-forge or file:///srv/conda-channel")
        return text
    if text.startswith("/") and os.path.isabs(text):
        return text  # a local channel directory, as conda takes it
    if not _CHANNEL_NAME.fullmatch(text) or ".." in text.split("/"):
        raise ModuleError(
            f"channel {masked!r} in {option} is not a channel name (conda-forge, pytorch), an http(s):// URL or a file:// path. "
            f"{NOTHING}"
        )
    return text


def check_timeout(value: t.Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModuleError(f"timeout {value!r} must be a whole number of seconds, at least 1 (the default is 1800). {NOTHING}")
    return value


def check_prefix(prefix: t.Any, tool_dir: str | None = None, example: str = PREFIX_EXAMPLE) -> str:
    return _ownership.check_target(text_option(prefix, "prefix", example), "prefix", example, tool_dir)


def validate(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Every option checked before anything is read from or changed on the host; returns the normalized values."""
    refuse_nul(params)
    out: dict[str, t.Any] = {"prefix": check_prefix(params["prefix"])}
    present = params["state"] == "present"
    installer = text_option(params.get("installer"), "installer", "https://github.com/conda-forge/miniforge/releases/download/...")
    sha = text_option(params.get("sha256"), "sha256", "the digest in the release's .sha256 file")
    if sha is not None and not _SHA256.fullmatch(sha):
        raise ModuleError(f"sha256 {sha!r} is not a SHA-256 hex digest (64 hex digits). Copy it from the release's .sha256 file. {NOTHING}")
    if installer:
        if "://" in installer:
            parts = parse_url(installer, "installer", ("http", "https", "file"),
                              "https://github.com/conda-forge/miniforge/releases/download/25.3.1-0/Miniforge3-25.3.1-0-Linux-x86_64.sh")
            if present and not sha:
                plain = " Plain http:// is readable and changeable by anyone on the path." if parts.scheme.lower() == "http" else ""
                raise ModuleError(
                    f"installer {shown(installer)!r} is a URL but sha256 is not set: an installer is run as a program, so it is "
                    f"only run after its checksum is verified.{plain} Set sha256 to the digest published with the release "
                    f"(Miniforge3-<version>-Linux-x86_64.sh.sha256). {NOTHING}"
                )
        elif not os.path.isabs(installer):
            raise ModuleError(f"installer {installer!r} must be an http(s):// or file:// URL, or an absolute path on the host. {NOTHING}")
    out["installer"] = installer
    out["sha256"] = sha.lower() if sha else None
    version = text_option(params.get("version"), "version", "25.3.1-0")
    if version is not None and not _VERSION.fullmatch(version):
        raise ModuleError(
            f"version {version!r} is not a version: give the conda version the base must hold, such as 25.3.1-0 (Miniforge's "
            f"release) or 25.3.1, or leave version unset to accept the one the installer brings. {NOTHING}"
        )
    out["version"] = version.split("-", maxsplit=1)[0] if version else None
    given = params.get("channels")
    channels = [check_channel(c) for c in (list_option(given, "channels", "[conda-forge]") if given is not None else ["conda-forge"])]
    if present and not channels:
        raise ModuleError(f"channels is empty: conda would fall back to Anaconda's 'defaults'. List conda-forge (or your mirror of it). {NOTHING}")
    out["channels"] = channels
    alias = text_option(params.get("channel_alias"), "channel_alias", "https://mirror.example/conda")
    if alias:
        parse_url(alias, "channel_alias", ("http", "https", "file"), "https://mirror.example/conda")
    out["channel_alias"] = alias
    custom = params.get("custom_channels") or {}
    if not isinstance(custom, dict):
        raise ModuleError(f"custom_channels must be a mapping of channel name to URL (conda-forge: https://mirror.example/conda). {NOTHING}")
    for name, url in custom.items():
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise ModuleError(f"custom_channels key {shown(str(name))!r} is not a channel name (conda-forge). {NOTHING}")
        parse_url(text_option(url, f"custom_channels entry {name!r}", "https://mirror.example/conda") or "",
                  f"custom_channels entry {name!r}", ("http", "https", "file"), "https://mirror.example/conda (the parent of the channel)")
    out["custom_channels"] = dict(custom)
    proxies = params.get("proxy_servers") or {}
    if not isinstance(proxies, dict):
        raise ModuleError(f"proxy_servers must be a mapping with the keys http and https, each a proxy URL. {NOTHING}")
    for scheme, url in proxies.items():
        ok = scheme in ("http", "https") and isinstance(url, str)
        if ok:
            try:
                parse_url(url, "proxy_servers", ("http", "https"), "http://proxy.example:3128")
            except ModuleError:
                ok = False
        if not ok:
            raise ModuleError("proxy_servers takes the keys http and https, each an http(s):// proxy URL such as "
                              f"http://proxy.example:3128 (values are not shown: they may hold credentials). {NOTHING}")
    out["proxy_servers"] = dict(proxies)
    ssl = text_option(params.get("ssl_verify"), "ssl_verify", "auto") or "auto"
    if ssl not in ("auto", "true", "false") and not (ssl.startswith("/") and os.path.isfile(ssl)):
        raise ModuleError(f"ssl_verify {ssl!r} must be auto, true, false, or the absolute path of a CA bundle on the host. {NOTHING}")
    out["ssl_verify"] = ssl
    mode = text_option(params.get("mode"), "mode", "'0755'")
    if mode is not None and not _OCTAL.fullmatch(mode):
        raise ModuleError(f"mode {mode!r} is not an octal mode such as '0755'. {NOTHING}")
    if mode is not None and int(mode, 8) & 0o002:
        raise ModuleError(f"mode {mode!r} makes the prefix world-writable: anyone could replace conda. Use 0755 or 0750. {NOTHING}")
    out["mode"] = mode
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        name = text_option(params.get(key), key, "alice")
        if name:
            try:
                lookup(name)
            except (KeyError, ValueError) as exc:
                raise ModuleError(f"{key} {name!r} does not exist on the host. Create it first, or leave {key} unset. {NOTHING}") from exc
        out[key] = name
    out["timeout"] = check_timeout(params.get("timeout", 1800))
    out["state"] = params["state"]
    return out


def resolve_ssl_verify(value: str, exists: t.Callable[[str], bool] = os.path.isfile) -> str | None:
    """auto -> the host's CA bundle (or None: conda's own default); true/false/path as given."""
    if value == "auto":
        return next((p for p in HOST_CA_BUNDLES if exists(p)), None)
    return value


def _yaml(value: t.Any) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def condarc_text(params: dict[str, t.Any], ssl_verify: str | None, hide_secrets: bool = False) -> str:
    """The managed .condarc: conda-forge only, strict priority, libmamba, no defaults."""
    lines = [CONDARC_HEADER, "channels:"]
    lines += [f"  - {_yaml(c)}" for c in params["channels"]]
    lines += [
        "channel_priority: strict",
        "solver: libmamba",
        "auto_update_conda: false",
        "notify_outdated_conda: false",
        "show_channel_urls: true",
    ]
    if params["channel_alias"]:
        lines.append(f"channel_alias: {_yaml(params['channel_alias'])}")
    if params["custom_channels"]:
        lines.append("custom_channels:")
        lines += [f"  {_yaml(k)}: {_yaml(str(v))}" for k, v in sorted(params["custom_channels"].items())]
    if params["proxy_servers"]:
        lines.append("proxy_servers:")
        lines += [f"  {k}: {_yaml('<hidden>' if hide_secrets else str(v))}" for k, v in sorted(params["proxy_servers"].items())]
    if ssl_verify is not None:
        lines.append(f"ssl_verify: {ssl_verify if ssl_verify in ('true', 'false') else _yaml(ssl_verify)}")
    return "\n".join(lines) + "\n"


sha256_file = _files.sha256_file


def is_conda_base(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta")) and (
        os.path.exists(os.path.join(prefix, "bin", "conda")) or os.path.exists(os.path.join(prefix, "condabin", "conda"))
    )


def conda_version(prefix: str) -> str | None:
    return _conda.package_version(Sysroot("/"), prefix, "conda")


def legacy_owned(prefix: str) -> bool:
    """A base installed by the collection before markers existed: its .condarc is the one this module writes."""
    try:
        with open(os.path.join(prefix, CONDARC), encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\n") == CONDARC_HEADER
    except OSError:
        return False


def hide_proxies(text: str, proxies: dict[str, t.Any]) -> str:
    for value in proxies.values():
        if value:
            text = text.replace(str(value), "<hidden>")
    return text


class MiniforgeWorker(Worker):
    """plan(): every option checked, the prefix read; apply(plan): install, mark, .condarc, owner, or remove."""

    def plan(self) -> Plan:
        v = validate(self.params)
        self.v = v
        prefix = v["prefix"]
        exists = os.path.lexists(prefix)
        owned = exists and (_ownership.is_owned_dir(prefix) or (is_conda_base(prefix) and legacy_owned(prefix)))
        result: dict[str, t.Any] = {"prefix": prefix, "conda_version": None, "installed": False}
        if v["state"] == "absent":
            result["condarc"] = None
            if not exists:
                return Plan(False, result)
            if not is_conda_base(prefix):
                raise ModuleError(f"prefix {prefix} exists but is not a conda installation (no conda-meta and bin/conda): not removing it. "
                                  f"{NOTHING}")
            if not owned:
                _ownership.refuse_unowned_dir(prefix, "prefix", "remove")
            result["conda_version"] = conda_version(prefix)
            return Plan(True, result, diff={"before": f"{prefix}: conda {result['conda_version']}\n", "after": ""}, steps=[("remove",)])

        ssl_verify = resolve_ssl_verify(v["ssl_verify"])
        steps: list[tuple[t.Any, ...]] = []
        path = os.path.join(prefix, CONDARC)
        if exists:
            if not is_conda_base(prefix):
                raise ModuleError(
                    f"prefix {prefix} exists but is not a conda installation (no conda-meta and bin/conda). Remove it, or choose another "
                    f"prefix. {NOTHING}"
                )
            current = conda_version(prefix)
            if v["version"] and current != v["version"]:
                raise ModuleError(
                    f"{prefix} holds conda {current}, not {v['version']}. An installer does not upgrade a base in place: "
                    f"run '{prefix}/bin/conda update -n base conda' (then set version: to the new one), or remove it "
                    f"with state: absent and install again (its environments go with it). {NOTHING}"
                )
            result["conda_version"] = current
            if not _ownership.is_owned_dir(prefix):
                if not owned and os.path.lexists(path):
                    raise ModuleError(
                        f"prefix {prefix}: its {path} exists and was not written by the collection (its first line is not {CONDARC_HEADER!r}), and the "
                        f"base {prefix} has no {_ownership.MARKER} marker, so the .condarc will not be overwritten. Manage that base's "
                        f".condarc yourself, or adopt the base by creating {os.path.join(prefix, _ownership.MARKER)}. {NOTHING}"
                    )
                if owned:
                    steps.append(("mark",))  # made by an earlier version of the collection: marked now
        else:
            if not v["installer"]:
                raise ModuleError(f"{prefix} does not exist and no installer was given. Set installer (a URL with sha256, or a file on "
                                  f"the host). {NOTHING}")
            local = v["installer"][len("file://"):] if v["installer"].startswith("file://") else v["installer"]
            if "://" not in local and not os.path.isfile(local):
                raise ModuleError(f"installer {shown(v['installer'])!r} does not exist on the host. Copy it there, or give its URL "
                                  f"and sha256. {NOTHING}")
            if "://" not in local and v["sha256"]:
                digest = sha256_file(local)  # a file on the host is checked where it lies, before anything is written
                if digest != v["sha256"]:
                    raise ModuleError(
                        f"The installer's sha256 is {digest}, not the {v['sha256']} given: it was not run and {prefix} was not "
                        f"created. Check the file and the digest published with the release. {NOTHING}"
                    )
            steps += [("install", local), ("mark",)]
        text = condarc_text(v, ssl_verify)
        try:
            with open(path, encoding="utf-8") as handle:
                before = handle.read()
        except OSError:
            before = ""
        if before != text:
            steps.append(("condarc", text))
        if (exists and self.owner_changes()) or (not exists and (v["owner"] or v["group"] or v["mode"])):
            steps.append(("owner",))
        result["condarc"] = path
        diff = {"before": shown(hide_proxies(before, v["proxy_servers"])), "after": shown(condarc_text(v, ssl_verify, hide_secrets=True)),
                "before_header": path, "after_header": path}
        self.ssl_verify = ssl_verify
        return Plan(bool(steps), result, diff=diff, steps=steps)

    def apply(self, plan: Plan) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        prefix = self.v["prefix"]
        for step in plan.steps:
            if step[0] == "remove":
                shutil.rmtree(prefix)
            elif step[0] == "install":
                out.update(self.install(step[1]))
            elif step[0] == "mark":
                _ownership.write_marker(prefix, MODULE)
            elif step[0] == "condarc":
                self.write_condarc(step[1])
            elif step[0] == "owner":
                self.set_owner()
        return out

    # --- install ---------------------------------------------------------------
    def download(self, url: str, dest: str) -> None:
        """The installer from ``url`` into ``dest`` (0600), through the one downloader (proxy_env and the CA honoured)."""
        ssl_verify = self.ssl_verify
        ca = ssl_verify if ssl_verify and ssl_verify.startswith("/") else None
        response = self.host.fetch(url, timeout=120, ca_path=ca)
        with open(dest, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            for block in iter(lambda: response.read(1 << 20), b""):
                handle.write(block)

    def install(self, source: str) -> dict[str, t.Any]:
        v = self.v
        prefix = v["prefix"]
        parent = os.path.dirname(prefix)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(prefix)}.mlhost-installer-{secrets.token_hex(4)}.sh")
        old_umask = os.umask(0o022)
        try:
            if "://" in source:
                self.download(source, tmp)
            else:
                shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o700)
            digest = sha256_file(tmp)
            if v["sha256"] and digest != v["sha256"]:
                raise ModuleError(
                    f"The installer's sha256 is {digest}, not the {v['sha256']} given: it was not run and {prefix} "
                    "was not created. Check the URL and the digest published with the release (a proxy or mirror may have "
                    "served another file)."
                )
            try:
                result = self.runner.run(["bash", tmp, "-b", "-p", prefix], check=False, timeout=v["timeout"],
                                         env={"HOME": os.environ.get("HOME", "/root"), "CONDA_ALWAYS_YES": "true"})
                if result is None or result.rc != 0:
                    tail = " | ".join(((result.err or "") + (result.out or "")).strip().splitlines()[-8:]) if result else "bash not found"
                    raise ModuleError(f"The installer failed (rc={result.rc if result else None}); {prefix} was removed. It said: {tail}")
                if not is_conda_base(prefix):
                    raise ModuleError(f"The installer exited 0 but {prefix} holds no conda (no conda-meta and bin/conda); it was removed.")
                version = conda_version(prefix)
                if v["version"] and version != v["version"]:
                    raise ModuleError(
                        f"The installer installed conda {version}, not the {v['version']} asked for; {prefix} was removed. "
                        "Point installer at the release that carries that conda, or fix version."
                    )
            except BaseException:
                shutil.rmtree(prefix, ignore_errors=True)
                raise
        finally:
            os.umask(old_umask)
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return {"installed": True, "conda_version": version, "installer_sha256": digest}

    # --- .condarc and ownership ---------------------------------------------------
    def write_condarc(self, text: str) -> None:
        path = os.path.join(self.v["prefix"], CONDARC)
        tmp = path + ".mlhost-tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        # world-readable, so every user of a shared base gets its channels; 0640 when a proxy URL holds credentials
        secret = any("@" in str(v) for v in (self.v["proxy_servers"] or {}).values())
        os.chmod(tmp, 0o640 if secret else 0o644)
        os.replace(tmp, path)

    def _ids(self) -> tuple[int, int]:
        uid = pwd.getpwnam(self.v["owner"]).pw_uid if self.v["owner"] else -1
        gid = grp.getgrnam(self.v["group"]).gr_gid if self.v["group"] else -1
        return uid, gid

    def _walk(self) -> t.Iterator[str]:
        for root, dirs, files in os.walk(self.v["prefix"]):
            yield root
            for name in dirs + files:
                yield os.path.join(root, name)

    def owner_changes(self) -> bool:
        """Whether the prefix's mode, or the owner or group of any of its files, differs from what was asked (read only)."""
        v = self.v
        if v["mode"] and (os.lstat(v["prefix"]).st_mode & 0o7777) != int(v["mode"], 8):
            return True
        uid, gid = self._ids()
        if uid == -1 and gid == -1:
            return False
        for name in self._walk():
            st = os.lstat(name)
            if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
                return True
        return False

    def set_owner(self) -> None:
        v = self.v
        if v["mode"]:
            os.chmod(v["prefix"], int(v["mode"], 8))
        uid, gid = self._ids()
        if uid == -1 and gid == -1:
            return
        for name in self._walk():
            st = os.lstat(name)
            if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
                os.lchown(name, uid, gid)
