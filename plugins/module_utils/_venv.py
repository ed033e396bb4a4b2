# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Python virtual environments built atomically, with uv or pip.

PRIVATE to the collection: no compatibility promise outside it.

Layout: ``path`` is a symlink to a generation directory
``<parent>/.<name>.mlhost-envs/<generation>``. An update builds a new
generation beside the current one, installs into it, imports the requested
top-level packages, and only then swaps the symlink with one rename(2). A
failure removes the new generation and leaves the old env as it was. Each
generation keeps ``mlhost-env.json`` (what was requested), so a later run
can tell an unchanged request from one that removes packages.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import stat
import time
import typing as t
import urllib.parse

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _files, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_text

STATE_FILE = "mlhost-env.json"
SEED_PACKAGES = {"pip", "setuptools", "wheel"}
TOOL_UV_VERSION = "0.13.9"
TOOL_PACKAGING_VERSION = rq.PACKAGING_VERSION
# The pip that installs uv and packaging into the tool venv (and pip into a pip-backend env) where the host has no pip
# wheel of its own (a fresh Debian host without python3-venv): this exact file, run as a zipapp
# (``python pip.whl/pip install ...``), checked by its sha256 (PyPI's simple index, 2026-12-03).
PIP_WHEEL = "pip-26.3-py3-none-any.whl"
PIP_WHEEL_SHA256 = "f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13"

# Runs inside an environment's own interpreter: what it holds and its marker environment (``probe``).
_PROBE_CODE = r"""
import importlib.metadata as m, json, os, platform, sys
pk = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        pk[name] = d.version
probe = {
    "python": "%d.%d.%d" % sys.version_info[:3],
    "prefix": sys.prefix,
    "packages": pk,
    "markers": {
        "implementation_name": sys.implementation.name,
        "implementation_version": "%d.%d.%d" % sys.implementation.version[:3],
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform,
    },
}
"""
PROBE = _PROBE_CODE + "print(json.dumps(probe))\n"

# The import check of a new environment, given ``mode`` and ``names``. mode is "auto" (names are the requested
# distributions: each one's own module is imported, the top-level module named like the distribution, else its first
# public one, read from top_level.txt or, where a wheel has none, from its RECORD) or "modules" (names are module names
# to import). A distribution's other top-level modules are not imported: black ships blackd, which needs aiohttp, an
# extra. Leaves {"checked": [...], "failed": {module: error}, "missing": [distributions not installed]} in ``imports``.
_IMPORT_CODE = r"""
import importlib, importlib.metadata as m, json, re, sys
def canon(n): return re.sub(r"[-_.]+", "-", n).lower()
def tops_of(d):
    tops = (d.read_text("top_level.txt") or "").split()
    if not tops:
        for f in d.files or []:
            first = f.parts[0]
            if first.endswith((".dist-info", ".data", ".pth")) or first in ("..", "bin"):
                continue
            name = first[:-3] if first.endswith(".py") else first
            if "." not in name and name not in tops:
                tops.append(name)
    return [t for t in tops if t and not t.startswith("_") and t not in ("tests", "test")]
failed, checked, missing = {}, [], []
if mode == "auto":
    by_name = {}
    for d in m.distributions():
        by_name.setdefault(canon(d.metadata["Name"] or ""), d)
    mods = []
    for name in names:
        d = by_name.get(canon(name))
        if d is None:
            missing.append(name)
            continue
        tops = tops_of(d)
        own = [t for t in tops if canon(t) == canon(name)]
        if own or tops:
            mods.append((own or sorted(tops))[0])
else:
    mods = names
for mod in mods:
    if mod in checked:
        continue
    checked.append(mod)
    try:
        importlib.import_module(mod)
    except Exception as exc:
        failed[mod] = "%s: %s" % (type(exc).__name__, exc)
imports = {"checked": checked, "failed": failed, "missing": missing}
"""
# The import check alone: argv[1] is the mode, argv[2:] the names. Prints the ``imports`` JSON.
IMPORT_CHECK = "import sys\nmode, names = sys.argv[1], sys.argv[2:]\n" + _IMPORT_CODE + "print(json.dumps(imports))\n"

# A new generation's one interpreter start: the probe, printed (line ``mlhost-probe {...}``) before anything is
# imported, then the import check (its JSON the last line). argv[1] is "auto", "modules" or "off" (the probe only);
# argv[2] the working environment's {"python": version, "packages": {name: version}} on an update, else null: with the
# same Python minor, auto then imports only the requested distributions that are new or whose version moved (the
# others are the same wheels as in the working environment; the installer's dependency check covers the whole set);
# argv[3:] the names, as for IMPORT_CHECK.
NEW_ENV_CHECK = (
    _PROBE_CODE
    + 'print("mlhost-probe " + json.dumps(probe))\nsys.stdout.flush()\n'
    + "import re\nmode, old, names = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]\n"
    + "if mode == 'off':\n    sys.exit(0)\n"
    + "if mode == 'auto' and old and str(old.get('python', '')).rsplit('.', 1)[0] == probe['markers']['python_version']:\n"
    + "    now = {re.sub(r'[-_.]+', '-', k).lower(): v for k, v in pk.items()}\n"
    + "    names = [n for n in names if old['packages'].get(n) != now.get(n)]\n"
    + _IMPORT_CODE
    + 'print("\\n" + json.dumps(imports))\n'  # on a line of its own, whatever an import printed
)
PROBE_LINE = "mlhost-probe "

# A module name for import_check: dotted identifiers.
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def new_env_check_argv(env_python: str, import_check: list[str], names: list[str],
                       old: dict[str, t.Any] | None) -> list[str]:
    """The one start that probes a new generation and runs its import check (NEW_ENV_CHECK); ``old``: the working
    environment's probe on an update (auto then imports only what moved), else None."""
    baseline = json.dumps({"python": old["python"], "packages": old["packages"]}) if old else "null"
    if import_check in ([], ["off"]):
        return [env_python, "-I", "-c", NEW_ENV_CHECK, "off", baseline]
    if import_check == ["auto"]:
        return [env_python, "-I", "-c", NEW_ENV_CHECK, "auto", baseline] + list(names)
    return [env_python, "-I", "-c", NEW_ENV_CHECK, "modules", baseline] + list(import_check)


def read_new_env_check(out: str) -> tuple[dict[str, t.Any] | None, dict[str, t.Any] | None]:
    """(the probe, the import check's result) from NEW_ENV_CHECK's output; None for what it did not print. The probe
    is the first ``mlhost-probe`` line (printed before anything is imported); the import check the last line."""
    lines = (out or "").strip().splitlines()
    probe = imports = None
    for line in lines:
        if line.startswith(PROBE_LINE):
            try:
                probe = json.loads(line[len(PROBE_LINE):])
            except ValueError:
                pass
            break
    if lines and not lines[-1].startswith(PROBE_LINE):
        try:
            found = json.loads(lines[-1])
            imports = found if isinstance(found, dict) and "failed" in found else None
        except ValueError:
            pass
    if not isinstance(probe, dict) or not isinstance(probe.get("packages"), dict):
        probe = None
    return probe, imports


def dependency_check_argv(backend: str, env_python: str, uv: str | None) -> list[str]:
    """The installer's own consistency check of an environment: every installed distribution's requirements met."""
    if backend == "uv" and uv:
        return [uv, "pip", "check", "--python", env_python]
    return [env_python, "-m", "pip", "check"]


def refuse_python_installation(path: str, what: str = "path") -> None:
    """Refuse a directory that is a Python installation's own prefix (bin/python*, no pyvenv.cfg): not a venv to replace."""
    real = os.path.realpath(path)
    if not os.path.isdir(real) or os.path.exists(os.path.join(real, "pyvenv.cfg")):
        return
    if glob.glob(os.path.join(real, "bin", "python*")) or glob.glob(os.path.join(real, "lib", "python3*", "os.py")):
        raise ModuleError(
            f"{what} {path!r} is a Python installation's own prefix (it has bin/python but no pyvenv.cfg), not a venv: "
            "installing into it or replacing it would change or delete that Python. Choose a directory of its own, "
            "for example /opt/envs/<name>, and give that Python as python. Nothing was changed."
        )


def generations_dir(path: str) -> str:
    parent, name = os.path.split(os.path.normpath(path))
    return os.path.join(parent, f".{name}.mlhost-envs")


def new_generation(path: str) -> str:
    return os.path.join(generations_dir(path), time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3))


def env_python(path: str) -> str:
    return os.path.join(path, "bin", "python")


def read_state(path: str) -> dict[str, t.Any] | None:
    try:
        with open(os.path.join(path, STATE_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_state(gen: str, state: dict[str, t.Any]) -> None:
    with open(os.path.join(gen, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")


def is_owned_env(path: str) -> bool:
    """True when ``path`` is an environment the collection made: its directory (or the generation its symlink points
    at) carries the ownership marker, or, made by an earlier version, it is a symlink into ``.<name>.mlhost-envs/<gen>``
    whose generation holds ``mlhost-env.json``."""
    if _ownership.is_owned_dir(path):
        return True
    if not os.path.islink(path):
        return False
    real = os.path.realpath(path)
    gens = os.path.realpath(generations_dir(path))
    return os.path.dirname(real) == gens and os.path.isfile(os.path.join(real, STATE_FILE))


def refuse_unowned_env(path: str, action: str) -> None:
    """Refuse to ``action`` (remove, replace) an existing ``path`` that is not an environment the collection made."""
    if os.path.lexists(path) and not is_owned_env(path):
        _ownership.refuse_unowned_dir(path, "path", action)


def swap(path: str, gen: str) -> str | None:
    """Point ``path`` at ``gen`` atomically; returns the previous target to remove (or a moved-aside dir).

    A plain directory at ``path`` is moved aside only when it carries the ownership marker (an env made by the
    collection, or one the admin adopted); anything else is refused."""
    previous = None
    if os.path.islink(path):
        refuse_unowned_env(path, "replace")
        previous = os.path.realpath(path)
    elif os.path.lexists(path):
        refuse_unowned_env(path, "replace")
        previous = path + ".mlhost-replaced-" + secrets.token_hex(3)
        os.rename(path, previous)
    tmp_link = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.mlhost-link-{secrets.token_hex(3)}")
    os.symlink(gen, tmp_link)
    os.replace(tmp_link, path)
    return previous


def remove_tree(path: str | None) -> None:
    if path and os.path.lexists(path):
        if os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def clear_world_writable(top: str) -> list[str]:
    """Remove the world-write bit from every file and directory below ``top`` (uv leaves a 0666 .lock)."""
    fixed = []
    for root, dirs, files in os.walk(top):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH:
                os.chmod(name, stat.S_IMODE(st.st_mode) & ~stat.S_IWOTH)
                fixed.append(name)
    return fixed


def tool_paths(tool_dir: str) -> dict[str, str]:
    venv = os.path.join(tool_dir, "venv")
    return {"venv": venv, "python": os.path.join(venv, "bin", "python"), "uv": os.path.join(venv, "bin", "uv")}


# --- the tool venv: one helper for python_env (uv, packaging) and conda_env (py-rattler, packaging) ---------------


def tool_sites(venv: str) -> list[str]:
    """The site-packages directories of a tool venv (none when it is not there)."""
    return sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages")))


def use_tool_site(venv: str) -> None:
    """Put the tool venv's site-packages on ``sys.path`` (for packaging, py-rattler)."""
    for site in tool_sites(venv):
        rq.add_search_path(site)


def tool_has(venv: str, module_dir: str) -> bool:
    """True when the tool venv holds the importable package ``module_dir`` (``rattler``, ``packaging``)."""
    return any(os.path.isdir(os.path.join(site, module_dir)) for site in tool_sites(venv))


def ensure_tool_venv(
    runner: t.Any,
    venv: str,
    wants: list[str],
    *,
    python: str,
    find_links: t.Iterable[str] = (),
    offline: bool = False,
    index_url: str | None = None,
    extra_index_urls: t.Iterable[str] = (),
    ca_bundle: str | None = None,
    pip_wheel: str | None = None,
) -> None:
    """Make the tool venv ``venv`` where it is missing and pip-install ``wants`` into it.

    With ``pip_wheel`` (a pip wheel file: the host's own, or a verified download, ``pip_wheel_for``) the venv is made
    ``--without-pip`` and the wheel's pip runs as a zipapp: no ensurepip, so no python3-venv, and a tenth of the time.
    Without it, ``python -m venv`` (ensurepip) and the venv's own pip. The directory above ``venv`` is the
    collection's tool_dir: check it with ``_ownership.check_target`` first. A venv that fails to be made is removed
    with every directory this call made, and the ModuleError says so (``stage="venv"``); a failed install raises
    ModuleError with ``stage="install"``. Index URLs travel in the installer's environment, never in argv; messages
    are masked."""
    venv_python = os.path.join(venv, "bin", "python")
    if not os.access(venv_python, os.X_OK):
        made = []
        parent = venv
        while parent and parent != "/" and not os.path.lexists(parent):
            made.append(parent)
            parent = os.path.dirname(parent)
        result = runner.run([python, "-m", "venv"] + (["--without-pip"] if pip_wheel else []) + [venv], check=False)
        if result is None or result.rc != 0:
            # A venv without pip (no python3-venv) is left half made: remove what this call made.
            for directory in reversed(made):
                remove_tree(directory)
            raise ModuleError(
                f"Creating the tool venv {venv} failed: {mask_text(output_tail(result))}. Install python3-venv (Debian/Ubuntu) "
                f"so venvs can be created, or put {PIP_WHEEL} in a find_links directory.", stage="venv")
        _ownership.write_marker(venv, "mlinfra.mlhost.tool_venv")
    pip = [os.path.join(pip_wheel, "pip")] if pip_wheel else ["-m", "pip"]
    argv = [venv_python] + pip + ["install", "-q", "--disable-pip-version-check"] + list(wants)
    for link in find_links:
        argv += ["--find-links", link]
    if offline:
        argv.append("--no-index")
    result = runner.run(argv, check=False, env=installer_env("pip", index_url, list(extra_index_urls), ca_bundle))
    if result is None or result.rc != 0:
        raise ModuleError(
            f"Installing {' '.join(wants)} into the tool venv {venv} failed: {mask_text(output_tail(result))}. Point "
            "index_url/find_links at a source that has them, and ca_bundle at your proxy's CA.", stage="install")
    clear_world_writable(venv)
    use_tool_site(venv)


def has_own_pip(venv: str) -> bool:
    """True when the venv ``venv`` exists with its own pip (made with ensurepip): it needs no pip wheel."""
    return os.access(os.path.join(venv, "bin", "python"), os.X_OK) and tool_has(venv, "pip")


def pip_wheel_for(fetch: t.Callable[[str, str], tuple[str | None, str]] | None) -> tuple[str | None, str]:
    """A pip wheel to run as a zipapp: the host's own (``/usr/share/python-wheels``, ensurepip's bundled one), else
    ``PIP_WHEEL`` through ``fetch(name, sha256)`` (``fetch_wheel``: find_links, then the index; checked by sha256);
    (path or None, what was tried)."""
    for wheel in rq._pip_wheels():
        return wheel, ""
    if fetch is None:
        return None, "no pip wheel on the host"
    return fetch(PIP_WHEEL, PIP_WHEEL_SHA256)


def fetch_wheel(host: t.Any, name: str, sha256: str, *, find_links: t.Iterable[str], index_url: str | None, offline: bool,
                ca: str | None) -> tuple[str | None, str]:
    """A verified copy of the wheel ``name`` (sha256 ``sha256``) for a plan (``_requirements.load_packaging``), from a
    find_links directory or the index (index_url, else PyPI; not when offline), in the module's temporary directory
    (removed when the module exits); (path or None, what was tried)."""
    tried = []
    for link in find_links:
        candidate = os.path.join(link[len("file://"):] if link.startswith("file://") else link, name)
        if os.path.isfile(candidate):
            if _files.sha256_file(candidate) == sha256:
                return candidate, ""
            tried.append(f"{candidate} has another sha256")
    if offline:
        return None, "; ".join(tried + ["offline: no index asked"])
    index = (index_url or "https://pypi.org/simple").rstrip("/")
    page_url = f"{index}/{re.sub(r'[-_.]+', '-', name.split('-', 1)[0]).lower()}/"
    try:
        page = host.fetch(page_url, timeout=30, ca_path=ca).read().decode("utf-8", "replace")
        match = re.search(r'href="([^"]*' + re.escape(name) + r'[^"]*)"', page)
        if not match:
            return None, "; ".join(tried + [f"{page_url} lists no {name}"])
        url = urllib.parse.urljoin(page_url, match.group(1).replace("&amp;", "&"))
        data = host.fetch(url, timeout=60, ca_path=ca).read()
    except ModuleError as exc:
        return None, "; ".join(tried + [exc.msg])
    if _files.sha256_bytes(data) != sha256:
        return None, "; ".join(tried + [f"the {name} from {page_url} does not have the expected sha256"])
    where = os.path.join(getattr(host.module, "tmpdir", None) or "/tmp", name)
    _files.atomic_write(where, data, 0o600)
    return where, ""


def output_tail(result: t.Any, lines: int = 8) -> str:
    """The last lines of a command's output, joined, for a message (or why there is none)."""
    if result is None:
        return "the program was not found"
    text = (result.err or "") + (result.out or "")
    return " | ".join(text.strip().splitlines()[-lines:]) or f"rc={result.rc}"


# backend -> (fixed settings, index variable, extra-index variable, CA variables)
_INSTALLER_ENV = {
    "pip": (
        {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_CONFIG_FILE": os.devnull},
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", ("PIP_CERT", "SSL_CERT_FILE"),
    ),
    "uv": ({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}, "UV_DEFAULT_INDEX", "UV_INDEX", ("SSL_CERT_FILE",)),
}


# The system trust stores, as each family ships its bundle (Debian/Ubuntu, RHEL/Fedora, SUSE, Alpine/BSD-style).
SYSTEM_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                     "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")


def system_ca_bundle(root: str = "/") -> str | None:
    """The host's system CA bundle (what its own tools trust), or None.

    The installers do not trust it by themselves: uv uses its built-in roots and pip in a venv certifi's, so a host
    whose store trusts a TLS-intercepting proxy fails with "invalid peer certificate: UnknownIssuer". The modules hand
    this bundle to them unless ca_bundle names another."""
    for path in SYSTEM_CA_BUNDLES:
        full = os.path.join(root, path.lstrip("/"))
        if os.path.isfile(full) and os.access(full, os.R_OK):
            return path
    return None


def installer_env(backend: str, index_url: str | None, extra_index_urls: list[str], ca_bundle: str | None) -> dict[str, str]:
    """The installer's environment. Index URLs (which may hold tokens) travel here, never in argv."""
    fixed, index_var, extra_var, ca_vars = _INSTALLER_ENV[backend]
    env = dict(fixed)
    if index_url:
        env[index_var] = index_url
    if extra_index_urls:
        env[extra_var] = " ".join(extra_index_urls)
    for var in ca_vars if ca_bundle else ():
        env[var] = ca_bundle
    return env


def venv_command(backend: str, python: str, target: str, uv: str | None = None) -> list[str]:
    if backend == "uv":
        return [uv or "uv", "venv", "--no-config", "--python", python, target]
    return [python, "-m", "venv", target]


def install_command(
    backend: str,
    target: str,
    requirements_file: str | list[str],
    constraints: str | None,
    find_links: list[str],
    offline: bool,
    uv: str | None = None,
    require_hashes: bool = False,
) -> list[str]:
    """The install argv; ``require_hashes``: a hash-locked file, checked by uv as pip checks it (every package, its
    dependencies too, needs a matching hash)."""
    python = env_python(target)
    files = [requirements_file] if isinstance(requirements_file, str) else list(requirements_file)
    if backend == "uv":
        argv = [uv or "uv", "pip", "install", "--no-config", "--python", python]
    else:
        argv = [python, "-m", "pip", "install", "--no-warn-script-location"]
    for name in files:
        argv += ["-r", name]
    if require_hashes and backend == "uv":
        argv.append("--require-hashes")
    if constraints:
        argv += ["-c", constraints]
    for link in find_links:
        argv += ["--find-links", link]
    if offline:
        argv.append("--no-index")
    return argv


def failing_requirement(output: str, names: list[str]) -> list[str]:
    """The requested names an installer's error output talks about."""
    text = (output or "").lower()
    return [n for n in names if re.search(rf"(?<![a-z0-9_.-]){re.escape(n.lower())}(?![a-z0-9_-])", text)]
