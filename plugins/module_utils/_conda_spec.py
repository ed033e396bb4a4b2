# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Conda match specs and version rules, without conda.

PRIVATE to the collection: no compatibility promise outside it.

Written from conda's documented rules (conda.models.version, the match
spec grammar of conda's docs), for the forms environment.yml files use:

- versions: epoch ``1!``, local ``+abc``, components split at ``.`` and
  ``_``, each split into numerals and letters (``1.1a1`` -> 1, [1, a, 1]);
  a component starting with a letter gets a 0 first (``1.1.a1 == 1.1.0a1``);
  ``dev`` sorts before every other string, ``post`` after every number;
  strings sort before numbers (``1.0a1 < 1.0``); missing components are 0
  (``1.0 == 1.0.0``); case-insensitive.
- version specs: ``==``, ``!=``, ``>=``, ``>``, ``<=``, ``<``, ``~=``,
  ``1.2.*`` / ``1.2*`` (component-wise prefix: not 1.20), other ``*`` globs,
  ``,`` (and), ``|`` (or; ``,`` binds tighter), parentheses, a bare version
  (exact, ``1.2`` == 1.2.0).
- match specs: ``name``, ``name 1.2.*``, ``name >=1,<2 py311*`` (version
  then build glob), ``name=1.2`` (1.2.*), ``name==1.2`` (exact),
  ``name=1.2=build``, ``name>=1.2``, ``channel::name``,
  ``name[version='>=1', build=..., build_number=...]``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import typing as t


class SpecError(ValueError):
    pass


# --- versions -----------------------------------------------------------------

_DEV = (0, "")  # sorts first
_POST = (3, "")  # sorts last


def _atom(token: str) -> tuple[int, t.Any]:
    if token.isdigit():
        return (2, int(token))
    if token == "dev":
        return _DEV
    if token == "post":
        return _POST
    if token == "*":
        return (1, "*")
    return (1, token)


def _components(text: str) -> list[list[tuple[int, t.Any]]]:
    comps = []
    for comp in re.split(r"[._]", text):
        runs = re.findall(r"\d+|[^\d]+", comp) or ["0"]
        atoms = [_atom(r) for r in runs]
        if atoms[0][0] != 2:
            atoms.insert(0, (2, 0))
        comps.append(atoms)
    return comps


@functools.total_ordering
class Version:
    """A conda version, ordered as conda's VersionOrder orders them."""

    _VALID = re.compile(r"^(\d+!)?[a-z0-9_.+*]+$")

    def __init__(self, text: str) -> None:
        raw = str(text).strip()
        norm = raw.lower().replace("-", "_")
        edges = (".", "_", "+")
        if (not norm or not self._VALID.match(norm) or norm.startswith(edges) or norm.endswith(edges)
                or norm.count("+") > 1 or re.search(r"[._+]{2}", norm)):
            raise SpecError(f"{text!r} is not a conda version.")
        self.text = raw
        epoch = 0
        if "!" in norm:
            head, norm = norm.split("!", 1)
            epoch = int(head)
        main, _sep, local = norm.partition("+")
        self.epoch = epoch
        self.main = _components(main)
        self.local = _components(local) if local else []

    @staticmethod
    def _cmp_parts(a: list[list[tuple[int, t.Any]]], b: list[list[tuple[int, t.Any]]]) -> int:
        for i in range(max(len(a), len(b))):
            ca = a[i] if i < len(a) else [(2, 0)]
            cb = b[i] if i < len(b) else [(2, 0)]
            for j in range(max(len(ca), len(cb))):
                x = ca[j] if j < len(ca) else (2, 0)
                y = cb[j] if j < len(cb) else (2, 0)
                if x != y:
                    return -1 if x < y else 1
        return 0

    def _cmp(self, other: Version) -> int:
        if self.epoch != other.epoch:
            return -1 if self.epoch < other.epoch else 1
        return self._cmp_parts(self.main, other.main) or self._cmp_parts(self.local, other.local)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._cmp(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self._cmp(other) < 0

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"

    def startswith(self, prefix: Version) -> bool:
        """Component-wise prefix: 1.2.3 and 1.2 start with 1.2; 1.20 does not."""
        if self.epoch != prefix.epoch:
            return False
        if prefix.local:
            return self._cmp_parts(self.main, prefix.main) == 0 and _prefix_of(prefix.local, self.local)
        return _prefix_of(prefix.main, self.main)


def _prefix_of(prefix: list[list[tuple[int, t.Any]]], comps: list[list[tuple[int, t.Any]]]) -> bool:
    for i, pc in enumerate(prefix):
        vc = comps[i] if i < len(comps) else [(2, 0)]
        if i < len(prefix) - 1:
            if Version._cmp_parts([pc], [vc]) != 0:
                return False
        elif vc[: len(pc)] != pc:
            return False
    return True


# --- version specs --------------------------------------------------------------

_OPS = ("==", "!=", ">=", "<=", "~=", ">", "<", "=")


def _single(term: str) -> t.Callable[[Version], bool]:
    term = term.strip()
    if term in ("*", ""):
        return lambda v: True
    op = next((o for o in _OPS if term.startswith(o)), "")
    text = term[len(op):].strip()
    if not text:
        raise SpecError(f"{term!r}: an operator without a version.")
    if op == "=":
        op, text = "", text if text.endswith("*") else text + ".*"
    star = text.endswith("*")
    if star:
        base = text[:-1].rstrip(".")
        if "*" in base:
            return _glob(op, text)
        if not base:
            return lambda v: op != "!="
        prefix = Version(base)
        if op in ("", "=="):
            return lambda v: v.startswith(prefix)
        if op == "!=":
            return lambda v: not v.startswith(prefix)
        if op in (">=", ">"):  # conda treats >=1.2.* as >=1.2
            return lambda v: v >= prefix if op == ">=" else v > prefix
        if op in ("<", "<="):
            return lambda v: v < prefix if op == "<" else v <= prefix
        raise SpecError(f"{term!r}: ~= cannot take a wildcard.")
    if "*" in text:
        return _glob(op, text)
    ref = Version(text)
    if op in ("", "=="):
        return lambda v: v == ref
    if op == "!=":
        return lambda v: v != ref
    if op == ">=":
        return lambda v: v >= ref
    if op == ">":
        return lambda v: v > ref
    if op == "<=":
        return lambda v: v <= ref
    if op == "<":
        return lambda v: v < ref
    # ~=1.2.3 means >=1.2.3 and 1.2.*
    if len(ref.main) < 2:
        raise SpecError(f"{term!r}: ~= needs at least two components (~=1.2).")
    upper = Version(".".join(text.split("+")[0].split("!")[-1].split(".")[:-1]))
    upper.epoch = ref.epoch
    return lambda v: v >= ref and v.startswith(upper)


def _glob(op: str, text: str) -> t.Callable[[Version], bool]:
    if op not in ("", "==", "!="):
        raise SpecError(f"{op}{text!r}: a glob in the middle of a version takes no operator other than != .")
    rx = re.compile("^" + re.escape(text.lower()).replace(r"\*", ".*") + "$")
    return (lambda v: not rx.match(v.text.lower())) if op == "!=" else (lambda v: bool(rx.match(v.text.lower())))


class VersionSpec:
    """A conda version spec: terms joined by ``,`` (and) and ``|`` (or), with parentheses."""

    def __init__(self, text: str) -> None:
        self.text = re.sub(r"\s+", "", str(text))
        if not self.text:
            raise SpecError("An empty version spec.")
        self._tokens = re.findall(r"[(),|]|[^(),|]+", self.text)
        self._pos = 0
        try:
            self._test = self._or()
        except IndexError as exc:
            raise SpecError(f"{text!r} is not a conda version spec (unbalanced parentheses).") from exc
        if self._pos != len(self._tokens):
            raise SpecError(f"{text!r} is not a conda version spec (unbalanced parentheses).")

    def _or(self) -> t.Callable[[Version], bool]:
        parts = [self._and()]
        while self._pos < len(self._tokens) and self._tokens[self._pos] == "|":
            self._pos += 1
            parts.append(self._and())
        return lambda v: any(p(v) for p in parts)

    def _and(self) -> t.Callable[[Version], bool]:
        parts = [self._atom()]
        while self._pos < len(self._tokens) and self._tokens[self._pos] == ",":
            self._pos += 1
            parts.append(self._atom())
        return lambda v: all(p(v) for p in parts)

    def _atom(self) -> t.Callable[[Version], bool]:
        token = self._tokens[self._pos]
        if token == "(":
            self._pos += 1
            inner = self._or()
            if self._tokens[self._pos] != ")":
                raise SpecError(f"{self.text!r}: unbalanced parentheses.")
            self._pos += 1
            return inner
        if token in (")", ",", "|"):
            raise SpecError(f"{self.text!r} is not a conda version spec (an empty term).")
        self._pos += 1
        return _single(token)

    def contains(self, version: str | Version) -> bool:
        return self._test(version if isinstance(version, Version) else Version(version))

    def __str__(self) -> str:
        return self.text


# --- match specs ------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*")


class MatchSpec:
    """``name [version [build]]`` and the other common forms of a conda match spec."""

    def __init__(self, text: str) -> None:
        self.text = str(text).strip()
        spec = re.sub(r"#.*$", "", self.text).strip()
        if not spec:
            raise SpecError("An empty match spec.")
        self.channel: str | None = None
        self.build: str | None = None
        self.build_number: int | None = None
        version: str | None = None
        brackets: dict[str, str] = {}
        bracket = re.search(r"\[(.*)\]\s*$", spec)
        if bracket:
            for key, value in re.findall(r"([a-z_]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^,\]]+)", bracket.group(1)):
                brackets[key] = value.strip().strip("'\"")
            spec = spec[: bracket.start()].strip()
        if "::" in spec:
            self.channel, spec = spec.split("::", 1)
        match = _NAME.match(spec)
        if not match:
            raise SpecError(f"{self.text!r} is not a conda match spec: it must start with a package name.")
        self.name = match.group(0).lower()
        rest = spec[match.end():].strip()
        # operators may be written with spaces around them (numpy >= 1.2)
        rest = re.sub(r"\s*([<>=!~,|])\s*", r"\1", rest)
        if rest:
            if rest[0] in "<>=!~":
                if rest.startswith("=") and not rest.startswith("=="):
                    body = rest[1:]
                    if "=" in body.replace("==", "").replace(">=", "").replace("<=", "").replace("!=", ""):
                        version, self.build = body.rsplit("=", 1)
                    else:
                        first = re.split(r"[,|]", body, maxsplit=1)[0]
                        if first and first[0] not in "<>=!~" and not first.endswith("*"):
                            body = first + ".*" + body[len(first):]
                        version = body
                elif rest.startswith("==") and rest.count("=") == 3 and re.match(r"^==[^=<>!~,|]+=[^=]+$", rest):
                    version, self.build = rest[2:].split("=", 1)
                else:
                    parts = rest.split()
                    version = parts[0]
                    if len(parts) > 1:
                        self.build = parts[1]
                    if len(parts) > 2:
                        raise SpecError(f"{self.text!r}: too many fields (name, version, build).")
            else:
                parts = rest.split()
                if len(parts) > 2:
                    raise SpecError(f"{self.text!r}: too many fields (name, version, build).")
                version = parts[0]
                self.build = parts[1] if len(parts) > 1 else None
        version = brackets.get("version", version)
        self.build = brackets.get("build", self.build)
        if "build_number" in brackets:
            try:
                self.build_number = int(brackets["build_number"])
            except ValueError as exc:
                raise SpecError(f"{self.text!r}: build_number must be a number.") from exc
        self.channel = brackets.get("channel", self.channel)
        self.version = VersionSpec(version) if version and version != "*" else None

    def matches(self, record: t.Mapping[str, t.Any]) -> bool:
        """Does a package record (name, version, build, build_number) satisfy this spec?"""
        if str(record.get("name", "")).lower() != self.name:
            return False
        if self.version is not None:
            try:
                if not self.version.contains(str(record.get("version", ""))):
                    return False
            except SpecError:
                return False
        if self.build is not None and not fnmatch.fnmatchcase(str(record.get("build", "")), self.build):
            return False
        if self.build_number is not None and record.get("build_number") != self.build_number:
            return False
        return True

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"MatchSpec({self.text!r})"


def dependency_name(dep: str) -> str:
    """The package name a ``depends`` entry of a record names (``python >=3.9`` -> python)."""
    spec = dep.split("::", 1)[-1].strip()
    match = _NAME.match(spec)
    return match.group(0).lower() if match else spec.lower()
