# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""environment.yml files: name, prefix, channels, dependencies and their ``pip:`` subsection.

PRIVATE to the collection: no compatibility promise outside it.

PyYAML parses the file where the host's Python has it. Where it does not (a
minimal Debian has no python3-yaml), a small reader of the block YAML that
environment.yml files are written in takes over: mappings, sequences, flow
lists (``[a, b]``), quoted and plain scalars and comments; anchors, tags and
multi-line scalars are refused with a message. Both give the same result on
the same file (the unit tests hold them to it).
"""

from __future__ import annotations

import importlib
import re
import typing as t

KNOWN_KEYS = ("name", "prefix", "channels", "dependencies", "variables")


class EnvFileError(ValueError):
    pass


# --- the fallback reader ---------------------------------------------------------------

def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"') and (i == 0 or line[i - 1] in " \t:-[,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _scalar(text: str, where: str) -> t.Any:
    text = text.strip()
    if not text:
        return None
    if text[0] in "&*!|>":
        raise EnvFileError(f"{where}: anchors, aliases, tags and block scalars are not supported here ({text!r}); "
                           "install python3-yaml on the host, or write the value plainly.")
    if text[0] in ("'", '"'):
        if len(text) < 2 or text[-1] != text[0]:
            raise EnvFileError(f"{where}: unterminated quoted string {text!r}.")
        body = text[1:-1]
        return body.replace("''", "'") if text[0] == "'" else body.replace('\\"', '"').replace("\\\\", "\\")
    if text[0] == "[":
        if text[-1] != "]":
            raise EnvFileError(f"{where}: unterminated flow list {text!r}.")
        inner = text[1:-1].strip()
        return [_scalar(part, where) for part in re.findall(r"""(?:'[^']*'|"[^"]*"|[^,])+""", inner)] if inner else []
    if text[0] == "{":
        if text[-1] != "}":
            raise EnvFileError(f"{where}: unterminated flow mapping {text!r}.")
        inner = text[1:-1].strip()
        out = {}
        for part in re.findall(r"""(?:'[^']*'|"[^"]*"|[^,])+""", inner) if inner else []:
            key, sep, value = part.partition(":")
            if not sep:
                raise EnvFileError(f"{where}: {part.strip()!r} in a flow mapping has no ':'.")
            out[str(_scalar(key, where))] = _scalar(value, where)
        return out
    if text in ("null", "~"):
        return None
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _split_key(text: str) -> tuple[str, str] | None:
    match = re.match(r"""^("[^"]*"|'[^']*'|[^'"\s:#][^:]*?)\s*:(?:\s+(.*)|$)""", text)
    if not match:
        return None
    return str(_scalar(match.group(1), "key")), (match.group(2) or "")


def simple_yaml(text: str, source: str) -> t.Any:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise EnvFileError(f"{source} line {number}: a tab in the indentation (YAML allows spaces only).")
        line = _strip_comment(raw)
        if line.strip() in ("---", "..."):
            continue
        if line.strip():
            lines.append((number, len(line) - len(line.lstrip()), line.strip()))
    pos = 0

    def block(indent: int) -> t.Any:
        nonlocal pos
        if pos >= len(lines):
            return None
        number, ind, body = lines[pos]
        if ind < indent:
            return None
        if body.startswith("- ") or body == "-":
            seq = []
            while pos < len(lines) and lines[pos][1] == ind and (lines[pos][2].startswith("- ") or lines[pos][2] == "-"):
                number, _ind, body = lines[pos]
                item = body[1:].strip()
                pos += 1
                if not item:
                    seq.append(block(ind + 1))
                elif not item.startswith(("'", '"', "[", "{")) and _split_key(item):
                    # "- key: value" opens a mapping whose keys sit at ind + 2
                    lines.insert(pos, (number, ind + 2, item))
                    seq.append(mapping(ind + 2))
                else:
                    seq.append(_scalar(item, f"{source} line {number}"))
            if pos < len(lines) and lines[pos][1] > ind:
                raise EnvFileError(f"{source} line {lines[pos][0]}: unexpected indentation.")
            return seq
        if not body.startswith(("'", '"', "[", "{")) and _split_key(body):
            return mapping(ind)
        pos += 1
        return _scalar(body, f"{source} line {number}")

    def mapping(ind: int) -> dict[str, t.Any]:
        nonlocal pos
        out: dict[str, t.Any] = {}
        while pos < len(lines) and lines[pos][1] == ind:
            number, _ind, body = lines[pos]
            kv = _split_key(body)
            if kv is None:
                raise EnvFileError(f"{source} line {number}: expected 'key: value', found {body!r}.")
            key, value = kv
            if key in out:
                raise EnvFileError(f"{source} line {number}: the key {key!r} appears twice.")
            pos += 1
            if value.strip():
                out[key] = _scalar(value, f"{source} line {number}")
            elif pos < len(lines) and (lines[pos][1] > ind or (lines[pos][1] == ind and lines[pos][2].startswith("-"))):
                out[key] = block(lines[pos][1])
            else:
                out[key] = None
        if pos < len(lines) and lines[pos][1] > ind:
            raise EnvFileError(f"{source} line {lines[pos][0]}: unexpected indentation.")
        return out

    result = block(0)
    if pos < len(lines):
        raise EnvFileError(f"{source} line {lines[pos][0]}: unexpected content {lines[pos][2]!r}.")
    return result


def load_yaml(text: str, source: str, use_pyyaml: bool = True) -> t.Any:
    if use_pyyaml:
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            yaml = None
        if yaml is not None:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise EnvFileError(f"{source} is not valid YAML: {str(exc).splitlines()[0]} ({' '.join(str(exc).split())[-120:]})") from exc
    return simple_yaml(text, source)


# --- environment.yml -----------------------------------------------------------------------

def parse_environment(text: str, source: str, use_pyyaml: bool = True) -> dict[str, t.Any]:
    """{name, prefix, channels, conda (match spec strings), pip (requirement strings)} of an environment.yml."""
    data = load_yaml(text, source, use_pyyaml)
    if not isinstance(data, dict):
        raise EnvFileError(f"{source} is not an environment file: its top level must be a mapping with dependencies (and name, channels).")
    deps = data.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise EnvFileError(f"{source} has no dependencies list: add 'dependencies:' with one match spec per item (- python=3.11).")
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        raise EnvFileError(f"{source}: channels must be a list of channel names or URLs.")
    conda: list[str] = []
    pip: list[str] = []
    for item in deps:
        if isinstance(item, dict):
            if set(item) != {"pip"}:
                raise EnvFileError(f"{source}: a mapping in dependencies may only be the 'pip:' subsection, not {sorted(item)}.")
            entries = item["pip"] or []
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise EnvFileError(f"{source}: the pip subsection must be a list of requirement strings.")
            pip.extend(e.strip() for e in entries if e.strip())
        elif isinstance(item, (str, int, float)) and str(item).strip():
            conda.append(str(item).strip())
        else:
            raise EnvFileError(f"{source}: {item!r} in dependencies is not a match spec string.")
    name = data.get("name")
    prefix = data.get("prefix")
    for key, value in (("name", name), ("prefix", prefix)):
        if value is not None and not isinstance(value, str):
            raise EnvFileError(f"{source}: {key} must be a string.")
    if pip and not any(re.match(r"^pip(\s|=|<|>|!|~|$)", spec) for spec in conda):
        conda.append("pip")
    return {"name": name, "prefix": prefix, "channels": list(channels), "conda": conda, "pip": pip,
            "unknown_keys": sorted(k for k in data if k not in KNOWN_KEYS)}


def read_environment(path: str) -> dict[str, t.Any]:
    try:
        with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark (editors on Windows write one) is not content
            text = handle.read()
    except FileNotFoundError as exc:
        raise EnvFileError(f"file {path!r} does not exist on the host. Copy your environment.yml there first (ansible.builtin.copy), then rerun.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"file {path!r} cannot be read: {exc}") from exc
    return parse_environment(text, path)
