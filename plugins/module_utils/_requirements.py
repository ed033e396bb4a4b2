# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Requirements against what an environment holds, with ``packaging``.

PRIVATE to the collection: no compatibility promise outside it.

``packaging`` is imported lazily (``load_packaging``): the host's own, else the
module's tool venv (see ``_venv``), else the copy pip vendors (``pip._vendor.packaging``:
the interpreter's pip, or the pip wheel that python3-venv's ensurepip uses, read from
the wheel without unpacking it). A plan can therefore always parse and compare, on a
fresh host too, before anything is installed.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import json
import os
import re
import shlex
import sys
import sysconfig
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError, mask_text
from ansible_collections.mlinfra.mlhost.plugins.module_utils._ownership import TEXT_MARKER

_MODULES: dict[str, t.Any] = {}
# The pip wheels ensurepip installs from (Debian's python3-pip-whl, CPython's own bundle).
PIP_WHEEL_GLOBS = ("/usr/share/python-wheels/pip-*.whl",)


def add_search_path(path: str) -> None:
    if path not in sys.path:
        sys.path.insert(0, path)
        importlib.invalidate_caches()


def have_packaging() -> bool:
    """True when ``packaging`` (any of the sources ``load_packaging`` tries, bar the tool venv) can be used."""
    return _load(("packaging", "pip._vendor.packaging")) is not None


def _load(prefixes: t.Iterable[str]) -> str | None:
    if _MODULES:
        return _MODULES["source"]
    for prefix in prefixes:
        try:
            mods = {part: importlib.import_module(f"{prefix}.{part}") for part in ("requirements", "utils", "version", "specifiers", "markers")}
        except ImportError:
            continue
        _MODULES.update(mods, source=prefix)
        return prefix
    return None


def _pip_wheels() -> list[str]:
    bundled = os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip", "_bundled", "pip-*.whl")
    found = []
    for pattern in PIP_WHEEL_GLOBS + (bundled,):
        found += sorted(glob.glob(pattern))
    return found


# The packaging wheel a plan fetches on a host that has no packaging, no pip and no venv module's pip wheel (a fresh
# Debian host before build_tools installs python3-venv): this exact file, checked by its sha256 (PyPI, 2026-12-02).
PACKAGING_VERSION = "26.3"  # also the tool venv's pin (_venv.TOOL_PACKAGING_VERSION)
PACKAGING_WHEEL = f"packaging-{PACKAGING_VERSION}-py3-none-any.whl"
PACKAGING_WHEEL_SHA256 = "d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c"


def load_packaging(tool_sites: t.Iterable[str] = (), fetch_wheel: t.Callable[[str, str], tuple[str | None, str]] | None = None) -> str:
    """Make ``packaging`` usable; returns where it came from. Raises ModuleError when no source has it.

    Sources, in order: the host Python's own, the tool venv's, pip's vendored copy (pip installed, or the venv
    module's pip wheel), and last ``fetch_wheel(name, sha256)``: a verified copy of ``PACKAGING_WHEEL`` in a
    temporary place (it returns the wheel's path, or None, and what it tried), imported from the zip as it is."""
    if _load(("packaging",)):
        return "packaging"
    for site in tool_sites:
        add_search_path(site)
    if _load(("packaging", "pip._vendor.packaging")):
        return _MODULES["source"]
    for wheel in _pip_wheels():
        add_search_path(wheel)
        if _load(("pip._vendor.packaging",)):
            return _MODULES["source"]
    tried = ""
    if fetch_wheel is not None:
        wheel, tried = fetch_wheel(PACKAGING_WHEEL, PACKAGING_WHEEL_SHA256)
        if wheel:
            add_search_path(wheel)
            if _load(("packaging",)):
                return "packaging (a verified wheel fetched for the plan)"
    raise ModuleError(
        "Requirements cannot be read on this host: its Python has neither the packaging library nor pip (not even the "
        f"pip wheel of the venv module), and {PACKAGING_WHEEL} could not be had for the plan"
        + (f" ({mask_text(tried)})" if tried else "")
        + ". Install python3-venv (Debian/Ubuntu: apt-get install python3-venv; RHEL: it comes with python3), which "
        "python_env needs to build environments anyway, or put that wheel in a find_links directory, then rerun. "
        "Nothing was changed."
    )


def _pk() -> t.Any:
    if not _MODULES:
        load_packaging()
    return _MODULES["requirements"], _MODULES["utils"], _MODULES["version"]


def canonical(name: str) -> str:
    return _pk()[1].canonicalize_name(name)


def packaging_part(name: str) -> t.Any:
    """One of the loaded ``packaging`` modules (requirements, utils, version, specifiers, markers)."""
    _pk()
    return _MODULES[name]


class RequirementError(ModuleError):
    """A requirement line that is refused; its message shows the line masked (it may hold a token)."""


def strip_line(raw: t.Any, number: int, source: str) -> str:
    """A requirements line with its comment stripped; a NUL byte or a line break in it is refused."""
    text = "" if raw is None else str(raw)
    if any(c in text for c in "\0\n\r"):
        raise RequirementError(
            f"{source} line {number}: {mask_text(text)!r} holds a NUL byte or a line break: give one requirement per "
            "item or line. Nothing was changed."
        )
    return re.sub(r"(^|\s)#.*$", "", text).strip()


def _plain_line(raw: t.Any, number: int, source: str) -> str:
    """A requirement line with its comment stripped; refuses what no requirement holds."""
    line = strip_line(raw, number, source)
    if line.startswith("-"):
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} is a pip option; give indexes, links and constraints with the "
            "module's options (index_url, extra_index_urls, find_links, constraints), not inside requirements. "
            "Nothing was changed."
        )
    if not line.isascii():
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} holds characters that are not ASCII (a digit such as '５' is not "
            "0-9): write names and versions in plain ASCII, for example numpy==1.26.4. Nothing was changed."
        )
    return line


def parse_lines(lines: t.Iterable[str], source: str) -> list[t.Any]:
    """Parse requirement lines (comments and blank lines skipped; pip options refused clearly)."""
    parsed = []
    for number, raw in enumerate(lines, start=1):
        line = _plain_line(raw, number, source)
        if line:
            parsed.append(parse_one(line, number, source))
    return parsed


def parse_one(line: str, number: int, source: str) -> t.Any:
    """One requirement (a line already stripped of its comment and options) parsed with packaging."""
    requirements_mod = _pk()[0]
    try:
        return requirements_mod.Requirement(line)
    except requirements_mod.InvalidRequirement as exc:
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} is not a valid requirement: {mask_text(str(exc))}. Write a "
            "name, optional [extras], version specifiers such as >=1.26,<2 (or @ URL) and optional ; markers, for "
            "example numpy>=1.26,<2. Nothing was changed."
        ) from exc


# PEP 508 in outline, to refuse a malformed line before anything is installed (``packaging`` may not be on the
# host yet: it comes with the tool venv, which is made only after the input is known to be good).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9.*+!_-]*"
_CLAUSE = rf"(?:~=|===|==|!=|<=|>=|<|>)\s*{_VERSION}"
_SPECS = rf"{_CLAUSE}(?:\s*,\s*{_CLAUSE})*"
_REQUIREMENT = re.compile(
    rf"{_NAME}\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?:\(\s*{_SPECS}\s*\)|{_SPECS}|@\s*\S+\s*)?\s*(?:;\s*\S.*)?"
)


def check_syntax(lines: t.Iterable[str], source: str) -> None:
    """Refuse pip options and lines that are not requirements, without ``packaging``: nothing has run yet."""
    for number, raw in enumerate(lines, start=1):
        check_line_syntax("" if raw is None else str(raw), number, source)


def normal_form(requirement: t.Any) -> str:
    """A requirement written the same way by every packaging version the plan may load (the host's, the tool venv's,
    pip's vendored copy): canonical name and extras, the specifier set (sorted), the URL, the marker."""
    extras = ",".join(sorted(canonical(e) for e in requirement.extras))
    text = canonical(requirement.name) + (f"[{extras}]" if extras else "") + str(requirement.specifier)
    text += f" @ {requirement.url}" if requirement.url else ""
    return text + (f" ; {requirement.marker}" if requirement.marker is not None else "")


def check_line_syntax(line: str, number: int, source: str) -> None:
    """Refuse a line that is not a requirement, without ``packaging`` (a bare path or URL gets its own advice)."""
    line = _plain_line(line, number, source)
    if not line or _REQUIREMENT.fullmatch(line):
        return
    if line.startswith((".", "/", "~")) or re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", line):
        raise RequirementError(
            f"{source} line {number}: {mask_text(line)!r} is a bare path or URL: name what it installs, as "
            "name @ file:///absolute/path/name-1.0-py3-none-any.whl or name @ https://host/path (pip and uv read a "
            "relative path differently). Nothing was changed."
        )
    raise RequirementError(
        f"{source} line {number}: {mask_text(line)!r} is not a valid requirement: write a name, optional [extras], "
        "version specifiers such as >=1.26,<2 (or @ URL) and optional ; markers, for example numpy>=1.26,<2. "
        "Nothing was changed."
    )


def satisfied(requirement: t.Any, installed: dict[str, str], environment: dict[str, str] | None) -> bool:
    """Is ``requirement`` met by ``installed`` (canonical name -> version)?

    A requirement whose marker does not apply to the environment counts as met. A direct
    reference (``name @ url``) is met by any installed version of ``name``. Extras are not
    checked beyond the base distribution.
    """
    if requirement.marker is not None and environment is not None and not requirement.marker.evaluate(environment):
        return True
    version = installed.get(canonical(requirement.name))
    if version is None:
        return False
    if requirement.url:
        return True
    return requirement.specifier.contains(version, prereleases=True)


def direction(requirement: t.Any, version: str) -> str:
    """"upgraded" or "downgraded": where an unmet ``requirement`` moves the installed ``version`` (a clause that
    excludes it from above, such as ==1.4.2, <1.5 or ~=1.4.0 against 1.5.1, is a downgrade)."""
    version_mod = _pk()[2]
    try:
        have = version_mod.Version(version)
    except version_mod.InvalidVersion:
        return "upgraded"
    for spec in requirement.specifier:
        if spec.contains(have, prereleases=True):
            continue
        if spec.operator in ("<", "<="):
            return "downgraded"
        if spec.operator in ("==", "===", "~="):
            try:
                if version_mod.Version(spec.version.replace(".*", "")) < have:
                    return "downgraded"
            except version_mod.InvalidVersion:
                continue
    return "upgraded"


def applies(requirement: t.Any, environment: dict[str, str] | None) -> bool:
    """Does ``requirement``'s marker hold for the target ``environment`` (unknown environment: yes)?"""
    return requirement.marker is None or environment is None or bool(requirement.marker.evaluate(environment))


def diff_installed(before: dict[str, str], after: dict[str, str]) -> dict[str, t.Any]:
    """added / removed / upgraded (and downgraded) between two installed sets."""
    version_mod = _pk()[2]
    added = {name: after[name] for name in sorted(after) if name not in before}
    removed = {name: before[name] for name in sorted(before) if name not in after}
    changed = {}
    for name in sorted(set(before) & set(after)):
        if before[name] != after[name]:
            changed[name] = {"from": before[name], "to": after[name]}
    upgraded = {}
    downgraded = {}
    for name, change in changed.items():
        try:
            newer = version_mod.Version(change["to"]) > version_mod.Version(change["from"])
        except version_mod.InvalidVersion:
            newer = True
        (upgraded if newer else downgraded)[name] = change
    return {"added": added, "removed": removed, "upgraded": upgraded, "downgraded": downgraded}


# The first line of a lock file written before the marker line existed (collection 0.x): still ours.
_LEGACY_LOCK_HEAD = re.compile(r"# Exact pins of /[^\n]*, written by mlinfra\.mlhost\.python_env\.")


def lock_text(installed: dict[str, str], header: str) -> str:
    """A lock file: the collection's marker line (``_ownership.TEXT_MARKER``), comments, then ``name==version`` lines."""
    head = header.splitlines() or [""]
    lines = [f"{TEXT_MARKER} {head[0]}"] + [f"# {line}" for line in head[1:]]
    lines += [f"{name}=={installed[name]}" for name in sorted(installed)]
    return "\n".join(lines) + "\n"


def is_legacy_lock(first_line: str) -> bool:
    """True for the first line of a lock file an earlier version of python_env wrote."""
    return bool(_LEGACY_LOCK_HEAD.fullmatch(first_line.rstrip("\n")))


# --- requirements files as pip reads them ----------------------------------------------------------------------------
# Read, not run: -r and -c (paths relative to the including file), --hash with backslash continuations, the file's index
# and find-links options, a BOM, CRLF. The installer is then handed the user's file as it is (pip and uv read it again
# themselves); what is read here is the plan's view of it and the request's fingerprint.

MAX_INCLUDE_DEPTH = 10
_COMMENT = re.compile(r"(^|\s+)#.*$")
# File options with a value, as pip spells them (short and long); the value goes into the request.
_VALUE_OPTIONS = {
    "-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint",
    "-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_urls",
    "-f": "find_links", "--find-links": "find_links",
    "--only-binary": "only_binary", "--no-binary": "no_binary", "--trusted-host": "trusted_hosts",
}
_FLAG_OPTIONS = {"--no-index": "no_index", "--require-hashes": "require_hashes", "--pre": "pre", "--prefer-binary": "prefer_binary"}
_EDITABLE = ("-e", "--editable")
_HASH = re.compile(r"(sha256|sha384|sha512):[0-9a-fA-F]+")


class RequestLine(t.NamedTuple):
    """One requirement or constraint line of a file, its pip options taken off."""

    source: str
    number: int
    text: str
    hashes: tuple[str, ...]
    kind: str  # "requirement" or "constraint"


class FileRequest:
    """What a requirements file (with its includes) asks for: lines, file options, the files read."""

    def __init__(self) -> None:
        self.lines: list[RequestLine] = []
        self.options: dict[str, t.Any] = {"index_url": None, "extra_index_urls": [], "find_links": [], "only_binary": [],
                                          "no_binary": [], "trusted_hosts": [], "no_index": False, "require_hashes": False,
                                          "pre": False, "prefer_binary": False}
        self.files: list[str] = []
        self.where: dict[str, str] = {}  # an option's value -> "file line N", for the messages

    @property
    def hash_mode(self) -> bool:
        """pip's require-hashes mode: asked for, or as soon as one line carries a --hash."""
        return bool(self.options["require_hashes"] or any(line.hashes for line in self.lines))


def _refuse_line(source: str, number: int, text: str, problem: str) -> t.NoReturn:
    raise RequirementError(f"{source} line {number}: {mask_text(text)!r} {problem} Nothing was changed.")


def decode_file(data: bytes, source: str) -> str:
    """The text of a requirements file as pip decodes it: a BOM (UTF-8, UTF-16) says the encoding, else UTF-8."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequirementError(f"The requirements file {source} cannot be read as UTF-8 text ({exc}). Save it as UTF-8, "
                               "then rerun. Nothing was changed.") from exc


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined and comments stripped, as pip does; CRLF and
    CR line ends are line ends. Blank results are dropped."""
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.endswith("\\") and not _COMMENT.match(line):
            if not pending:
                first = number
            pending.append(line[:-1])
            continue
        if pending:
            joined.append((first, "".join(pending) + (" " + line if _COMMENT.match(line) else line)))
            pending = []
        else:
            joined.append((number, line))
    if pending:
        joined.append((first, "".join(pending)))
    out = []
    for number, line in joined:
        line = _COMMENT.sub("", line).strip()
        if line:
            out.append((number, line))
    return out


def _split_options(source: str, number: int, line: str) -> tuple[str, list[str]]:
    """A line's requirement text (up to the first word that starts with -) and its option words."""
    words = line.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            text, rest = " ".join(words[:index]).strip(), " ".join(words[index:])
            try:
                return text, shlex.split(rest)
            except ValueError as exc:
                _refuse_line(source, number, line, f"cannot be split into pip options ({exc}): close its quotes.")
    return line, []


def _option_value(source: str, number: int, line: str, words: list[str], index: int) -> tuple[str, str, int]:
    """(option, value, next index) for the option word at ``index`` (--opt=value, --opt value, -xvalue, -x value)."""
    word = words[index]
    if word.startswith("--") and "=" in word:
        name, value = word.split("=", 1)
        return name, value, index + 1
    if not word.startswith("--") and len(word) > 2:
        return word[:2], word[2:], index + 1
    if index + 1 >= len(words):
        _refuse_line(source, number, line, f"has {word} with no value after it.")
    return word, words[index + 1], index + 2


def read_requirements_file(path: str, kind: str = "requirement", request: FileRequest | None = None,
                           stack: tuple[str, ...] = ()) -> FileRequest:
    """Read ``path`` as pip reads a requirements (``kind`` requirement) or constraints (constraint) file, with its
    -r and -c includes; refuses, naming the file and line, what python_env does not take (-e, remote includes, a
    cycle, includes deeper than MAX_INCLUDE_DEPTH, ${VARIABLES}, options it does not know)."""
    request = request or FileRequest()
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join(list(stack[stack.index(real):]) + [real])
        raise RequirementError(f"The requirements files include each other in a cycle ({chain}). Remove one of the -r/-c "
                               "lines. Nothing was changed.")
    if len(stack) >= MAX_INCLUDE_DEPTH:
        raise RequirementError(f"{path} is included more than {MAX_INCLUDE_DEPTH} files deep (-r/-c). Flatten the "
                               "includes. Nothing was changed.")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        where = f" (included by {stack[-1]})" if stack else ""
        raise RequirementError(f"{path}{where} cannot be read: {exc.strerror}. Copy it to the host beside the file that "
                               "includes it (ansible.builtin.copy), then rerun. Nothing was changed.") from exc
    request.files.append(real)
    for number, line in logical_lines(decode_file(data, path)):
        _read_line(path, number, line, kind, request, stack + (real,))
    return request


def _read_line(source: str, number: int, line: str, kind: str, request: FileRequest, stack: tuple[str, ...]) -> None:
    if any(c in line for c in "\0"):
        _refuse_line(source, number, line, "holds a NUL byte.")
    if "${" in line:
        _refuse_line(source, number, line, "names an environment variable (${...}), which pip would fill in from the "
                     "module's environment on the host: write the value into the file (ansible.builtin.template), and "
                     "give a credential through index_url or the file's own URL.")
    text, words = _split_options(source, number, line)
    hashes: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _EDITABLE or word.startswith("--editable="):
            _refuse_line(source, number, line, "is an editable install (-e): that is a development checkout, and "
                         "python_env builds environments for hosts. Install the project as a package instead: "
                         "name @ file:///absolute/path/to/project (a directory or a built wheel), or put its wheel into "
                         "a find_links directory and require it by name.")
        name = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        if name in _FLAG_OPTIONS and word == name:
            request.options[_FLAG_OPTIONS[name]] = True
            request.where.setdefault(name, f"{source} line {number}")
            index += 1
            continue
        if name == "--hash":
            name, value, index = _option_value(source, number, line, words, index)
            if not text or not _HASH.fullmatch(value):
                _refuse_line(source, number, line, "has a --hash that is not name==version --hash=sha256:<hex> (sha256, "
                             "sha384 or sha512).")
            hashes.append(value.lower())
            continue
        if text:
            _refuse_line(source, number, line, f"has {name} after its requirement: only --hash may follow a requirement "
                         "on its line (write a file option such as -r or --index-url on a line of its own).")
        if name not in _VALUE_OPTIONS:
            _refuse_line(source, number, line, f"uses the pip option {name}, which python_env does not read in a "
                         "requirements file (it reads -r, -c, --hash, -i/--index-url, --extra-index-url, -f/--find-links, "
                         "--no-index, --require-hashes, --pre, --prefer-binary, --only-binary, --no-binary, --trusted-host). "
                         "Give it through the module's options, or remove it.")
        name, value, index = _option_value(source, number, line, words, index)
        _file_option(source, number, line, _VALUE_OPTIONS[name], value, kind, request, stack)
    if text:
        if text.startswith("-"):
            _refuse_line(source, number, line, "is a pip option python_env does not read.")
        request.lines.append(RequestLine(source, number, text, tuple(sorted(hashes)), kind))


def _file_option(source: str, number: int, line: str, key: str, value: str, kind: str, request: FileRequest,
                 stack: tuple[str, ...]) -> None:
    here = os.path.dirname(source)
    request.where.setdefault(value, f"{source} line {number}")
    if key in ("requirement", "constraint"):
        if "://" in value:
            _refuse_line(source, number, line, "includes a file by URL: copy that file to the host and include it by "
                         "its path (relative to this file).")
        # -r inside a constraints file is still constraints (pip).
        read_requirements_file(os.path.join(here, value), "constraint" if key == "constraint" else kind, request, stack)
    elif key == "trusted_hosts":
        request.where.setdefault("--trusted-host", f"{source} line {number}")
        request.options[key].append(value)
    elif key == "index_url":
        request.options["index_url"] = value
    elif key == "find_links":
        if "://" not in value and not os.path.isabs(value):
            local = os.path.join(here, value)  # pip: relative to the requirements file when it is there
            value = local if os.path.exists(local) else value
            request.where.setdefault(value, f"{source} line {number}")
        request.options["find_links"].append(value)
    else:
        request.options[key].append(value)


def request_lines_shown(request: FileRequest) -> list[str]:
    """The request's lines as they may be shown (credentials masked), for the plan's diff and the state file."""
    return [mask_text(line.text) + (" (constraint)" if line.kind == "constraint" else "") for line in request.lines]


def fingerprint(identity: dict[str, t.Any], salt: str) -> str:
    """sha256 of the request ``identity`` (JSON-able). Credentials (a URL's user-info and query) count, but only
    through a salted PBKDF2 of them, so the stored fingerprint cannot be turned back into a token by a cheap search."""
    shown = json.dumps(_masked(identity), sort_keys=True)
    secrets = sorted(_secrets(identity))
    digest = hashlib.sha256(shown.encode("utf-8"))
    if secrets:
        digest.update(hashlib.pbkdf2_hmac("sha256", "\0".join(secrets).encode("utf-8"), salt.encode("ascii"), 200_000))
    return digest.hexdigest()


def _masked(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return mask_text(value) if isinstance(value, str) else value


def _secrets(value: t.Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_secrets(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_secrets(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) and mask_text(value) != value else set()
