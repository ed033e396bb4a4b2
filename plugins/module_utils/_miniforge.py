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
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _conda
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot

CONDARC = ".condarc"
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem")
# A prefix may not be one of these, nor below the first group (except /usr/local/<name>).
SYSTEM_TREES = (
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc", "/sys", "/run",
    "/var/lib", "/var/cache", "/var/log",
)
SYSTEM_DIRS = ("/", "/opt", "/home", "/srv", "/var", "/tmp", "/root", "/usr/local", "/mnt", "/media")
ANACONDA_HOSTS = ("repo.anaconda.com", "repo.continuum.io", "conda.anaconda.org/anaconda", "anaconda.org/anaconda")
_URL = re.compile(r"^(https?|file)://\S+$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class MiniforgeError(Exception):
    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def validate_prefix(prefix: str) -> str:
    if not prefix or not os.path.isabs(prefix):
        raise MiniforgeError(f"prefix {prefix!r} must be an absolute path, for example /opt/miniforge3 or /home/alice/miniforge3.")
    norm = os.path.normpath(prefix)
    # A symlink (or a symlinked parent) that leads into a system tree is that tree: check where it really points too.
    for where in (norm, os.path.realpath(norm)):
        under_usr_local = where.startswith("/usr/local/") and where.count("/") >= 3
        in_tree = any(where == d or where.startswith(d + "/") for d in SYSTEM_TREES)
        home_itself = re.fullmatch(r"/home/[^/]+", where) is not None
        if where in SYSTEM_DIRS or home_itself or (in_tree and not under_usr_local):
            shown = f"{prefix!r}" if where == norm else f"{prefix!r} (a link to {where})"
            raise MiniforgeError(
                f"prefix {shown} is a system directory: an installer there could overwrite or, on removal, delete system "
                "files. Choose a directory of its own, for example /opt/miniforge3 (shared) or ~/miniforge3 (one user)."
            )
    return norm


def validate(params: dict[str, t.Any]) -> None:
    """Refuse bad input before anything is read from or changed on the host."""
    validate_prefix(params["prefix"])
    if params["state"] == "absent":
        return
    installer = params["installer"]
    sha = params["sha256"]
    if sha and not _SHA256.match(sha):
        raise MiniforgeError(f"sha256 {sha!r} is not a SHA-256 hex digest (64 hex digits). Copy it from the release's .sha256 file.")
    if installer:
        if "://" in installer:
            if not _URL.match(installer):
                raise MiniforgeError(f"installer {installer!r} is not an http(s):// or file:// URL, nor an absolute path on the host.")
            if not sha:
                plain = " Plain http:// is readable and changeable by anyone on the path." if installer.startswith("http://") else ""
                raise MiniforgeError(
                    f"installer {installer!r} is a URL but sha256 is not set: an installer is run as a program, so it is "
                    f"only run after its checksum is verified.{plain} Set sha256 to the digest published with the release "
                    "(Miniforge3-<version>-Linux-x86_64.sh.sha256)."
                )
        elif not os.path.isabs(installer):
            raise MiniforgeError(f"installer {installer!r} must be an http(s):// or file:// URL, or an absolute path on the host.")
    channels = params["channels"]
    if not channels:
        raise MiniforgeError("channels is empty: conda would fall back to Anaconda's 'defaults'. List conda-forge (or your mirror of it).")
    for channel in channels:
        if channel == "defaults" or any(host in channel for host in ANACONDA_HOSTS):
            raise MiniforgeError(
                f"channel {channel!r} is Anaconda's 'defaults' repository, whose terms of service require a paid licence for "
                "many organisations. Use conda-forge (or a mirror of it through custom_channels / channel_alias)."
            )
    if params["channel_alias"] and not _URL.match(params["channel_alias"]):
        raise MiniforgeError(f"channel_alias {params['channel_alias']!r} must be an http(s):// or file:// URL.")
    for name, url in (params["custom_channels"] or {}).items():
        if not _URL.match(str(url)):
            raise MiniforgeError(f"custom_channels entry {name!r} must map to an http(s):// or file:// URL (the parent of the channel).")
    for scheme, url in (params["proxy_servers"] or {}).items():
        if scheme not in ("http", "https") or not re.match(r"^https?://\S+$", str(url)):
            raise MiniforgeError("proxy_servers takes the keys http and https, each an http(s):// proxy URL (values are not shown: they may hold credentials).")
    ssl = params["ssl_verify"]
    if ssl not in ("auto", "true", "false") and not (ssl.startswith("/") and os.path.isfile(ssl)):
        raise MiniforgeError(f"ssl_verify {ssl!r} must be auto, true, false, or the absolute path of a CA bundle on the host.")
    if params["mode"] is not None and not re.fullmatch(r"0?[0-7]{3,4}", params["mode"]):
        raise MiniforgeError(f"mode {params['mode']!r} is not an octal mode such as '0755'.")
    if params["mode"] is not None and int(params["mode"], 8) & 0o002:
        raise MiniforgeError(f"mode {params['mode']!r} makes the prefix world-writable: anyone could replace conda. Use 0755 or 0750.")
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        if params[key]:
            try:
                lookup(params[key])
            except KeyError as exc:
                raise MiniforgeError(f"{key} {params[key]!r} does not exist on the host. Create it first, or leave {key} unset.") from exc


def resolve_ssl_verify(value: str, exists: t.Callable[[str], bool] = os.path.isfile) -> str | None:
    """auto -> the host's CA bundle (or None: conda's own default); true/false/path as given."""
    if value == "auto":
        return next((p for p in HOST_CA_BUNDLES if exists(p)), None)
    return value


def _yaml(value: t.Any) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def condarc_text(params: dict[str, t.Any], ssl_verify: str | None, hide_secrets: bool = False) -> str:
    """The managed .condarc: conda-forge only, strict priority, libmamba, no defaults."""
    lines = [
        "# Written by mlinfra.mlhost.miniforge: local changes are replaced on its next run.",
        "channels:",
    ]
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


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_conda_base(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta")) and (
        os.path.exists(os.path.join(prefix, "bin", "conda")) or os.path.exists(os.path.join(prefix, "condabin", "conda"))
    )


def conda_version(prefix: str) -> str | None:
    return _conda.package_version(Sysroot("/"), prefix, "conda")


class Miniforge:
    """One run of the miniforge module, through the one door ``runner`` and a ``fetch(url, dest, ca)`` callable."""

    def __init__(self, params: dict[str, t.Any], runner: t.Any, check_mode: bool, fetch: t.Callable[[str, str, str | None], None]) -> None:
        self.p = params
        self.runner = runner
        self.check_mode = check_mode
        self.fetch = fetch
        self.prefix = os.path.normpath(params["prefix"])

    def run(self) -> dict[str, t.Any]:
        p = self.p
        prefix = self.prefix
        result: dict[str, t.Any] = {"changed": False, "prefix": prefix, "conda_version": None, "installed": False}
        exists = os.path.lexists(prefix)
        if p["state"] == "absent":
            if exists and not is_conda_base(prefix):
                raise MiniforgeError(f"{prefix} exists but is not a conda installation (no conda-meta and bin/conda): not removing it.")
            if exists and not self.check_mode:
                shutil.rmtree(prefix)
            result["changed"] = exists
            result["condarc"] = None
            return result

        ssl_verify = resolve_ssl_verify(p["ssl_verify"])
        if exists:
            if not is_conda_base(prefix):
                raise MiniforgeError(
                    f"{prefix} exists but is not a conda installation (no conda-meta and bin/conda). Remove it, or choose another prefix."
                )
            current = conda_version(prefix)
            if p["version"] and current != p["version"]:
                raise MiniforgeError(
                    f"{prefix} holds conda {current}, not {p['version']}. An installer does not upgrade a base in place: "
                    f"run '{prefix}/bin/conda update -n base conda' (then set version: to the new one), or remove it "
                    "with state: absent and install again (its environments go with it)."
                )
            result["conda_version"] = current
        else:
            if not p["installer"]:
                raise MiniforgeError(f"{prefix} does not exist and no installer was given. Set installer (a URL with sha256, or a file on the host).")
            if "://" not in p["installer"] and not os.path.isfile(p["installer"]):
                raise MiniforgeError(f"installer {p['installer']!r} does not exist on the host. Copy it there, or give its URL and sha256.")
            result["changed"] = True
            if not self.check_mode:
                result.update(self.install(ssl_verify))

        result.update(self.configure(ssl_verify, installed_now=result["installed"]))
        condarc_changed, owner_changed = result.pop("condarc_changed"), result.pop("owner_changed")
        result["changed"] = result["changed"] or condarc_changed or owner_changed
        return result

    # --- install ---------------------------------------------------------------
    def install(self, ssl_verify: str | None) -> dict[str, t.Any]:
        p = self.p
        prefix = self.prefix
        parent = os.path.dirname(prefix)
        local = p["installer"][len("file://"):] if p["installer"].startswith("file://") else p["installer"]
        if "://" not in local and p["sha256"] and os.path.isfile(local):
            # A file on the host is checked where it lies, before anything is written.
            digest = sha256_file(local)
            if digest.lower() != p["sha256"].lower():
                raise MiniforgeError(
                    f"The installer's sha256 is {digest}, not the {p['sha256'].lower()} given: it was not run and {prefix} "
                    "was not created. Check the file and the digest published with the release."
                )
        os.makedirs(parent, mode=0o755, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(prefix)}.mlhost-installer-{secrets.token_hex(4)}.sh")
        old_umask = os.umask(0o022)
        try:
            source = p["installer"]
            if source.startswith("file://"):
                source = source[len("file://"):]
            if "://" in source:
                ca = ssl_verify if ssl_verify and ssl_verify.startswith("/") else None
                self.fetch(source, tmp, ca)
            else:
                if not os.path.isfile(source):
                    raise MiniforgeError(f"installer {p['installer']!r} does not exist on the host.")
                shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o700)
            digest = sha256_file(tmp)
            if p["sha256"] and digest.lower() != p["sha256"].lower():
                raise MiniforgeError(
                    f"The installer's sha256 is {digest}, not the {p['sha256'].lower()} given: it was not run and {prefix} "
                    "was not created. Check the URL and the digest published with the release (a proxy or mirror may have "
                    "served another file)."
                )
            try:
                result = self.runner.run(["bash", tmp, "-b", "-p", prefix], check=False, timeout=p["timeout"],
                                         env={"HOME": os.environ.get("HOME", "/root"), "CONDA_ALWAYS_YES": "true"})
                if result is None or result.rc != 0:
                    tail = " | ".join(((result.err or "") + (result.out or "")).strip().splitlines()[-8:]) if result else "bash not found"
                    raise MiniforgeError(f"The installer failed (rc={result.rc if result else None}); {prefix} was removed. It said: {tail}")
                if not is_conda_base(prefix):
                    raise MiniforgeError(f"The installer exited 0 but {prefix} holds no conda (no conda-meta and bin/conda); it was removed.")
                version = conda_version(prefix)
                if p["version"] and version != p["version"]:
                    raise MiniforgeError(
                        f"The installer installed conda {version}, not the {p['version']} asked for; {prefix} was removed. "
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
    def configure(self, ssl_verify: str | None, installed_now: bool) -> dict[str, t.Any]:
        p = self.p
        path = os.path.join(self.prefix, CONDARC)
        text = condarc_text(p, ssl_verify)
        try:
            with open(path, encoding="utf-8") as handle:
                before = handle.read()
        except OSError:
            before = ""
        changed = before != text
        shown_before = before
        for value in (p["proxy_servers"] or {}).values():
            shown_before = shown_before.replace(str(value), "<hidden>") if value else shown_before
        out: dict[str, t.Any] = {
            "condarc": path,
            "diff": {"before": shown_before, "after": condarc_text(p, ssl_verify, hide_secrets=True),
                     "before_header": path, "after_header": path},
            "condarc_changed": changed and not installed_now,
        }
        if changed and not self.check_mode and os.path.isdir(self.prefix):
            tmp = path + ".mlhost-tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            # world-readable, so every user of a shared base gets its channels; 0640 when a proxy URL holds credentials
            secret = any("@" in str(v) for v in (p["proxy_servers"] or {}).values())
            os.chmod(tmp, 0o640 if secret else 0o644)
            os.replace(tmp, path)
        out["owner_changed"] = self.set_owner() if os.path.isdir(self.prefix) else bool(p["owner"] or p["group"] or p["mode"])
        return out

    def set_owner(self) -> bool:
        p = self.p
        uid = pwd.getpwnam(p["owner"]).pw_uid if p["owner"] else -1
        gid = grp.getgrnam(p["group"]).gr_gid if p["group"] else -1
        changed = False
        st = os.lstat(self.prefix)
        if p["mode"] and (st.st_mode & 0o7777) != int(p["mode"], 8):
            changed = True
            if not self.check_mode:
                os.chmod(self.prefix, int(p["mode"], 8))
        if uid == -1 and gid == -1:
            return changed
        for root, dirs, files in os.walk(self.prefix):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                st = os.lstat(name)
                if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
                    changed = True
                    if self.check_mode:
                        return True
                    os.lchown(name, uid, gid)
        return changed
