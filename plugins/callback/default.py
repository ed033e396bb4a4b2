# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible.builtin.default, with a role's refused variables printed as one short line each."""

from __future__ import annotations

DOCUMENTATION = r"""
name: default
type: stdout
short_description: ansible.builtin.default, with a role's refused variables as one short line each
version_added: 1.0.0
author:
  - mlinfra.mlhost developers (@mlinfra)
description:
  - The output of C(ansible.builtin.default), but for one kind of failure - a role's argument validation
    (the C(Validating arguments against arg spec) task ansible-core runs before a role's tasks, action
    C(ansible.builtin.validate_argument_spec)).
  - ansible-core prints that failure as the whole result, the role's whole argument spec (C(argument_spec_data))
    included - about 15 KB for P(mlinfra.mlhost.ml_host#role). This callback prints one line per refused variable
    instead - its name, the type it was given and what it takes (type, elements, choices), and for a key an env or
    conda entry does not know, the documented key it is closest to (C(did you mean torch_cuda?)).
  - Every other result is printed as C(ansible.builtin.default) prints it; its options are the same.
  - The collection's C(ansible.cfg) and C(scripts/site.sh) set it (C(stdout_callback = mlinfra.mlhost.default)).
    Without it a refusal is still a refusal, printed as ansible-core prints it (its C(msg) holds the same errors).
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - set as the stdout callback in the configuration (C(stdout_callback = mlinfra.mlhost.default) or C(ANSIBLE_STDOUT_CALLBACK))
"""

import difflib
import re
import typing as t

from ansible import constants as C
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

VALIDATE_ACTIONS = ("validate_argument_spec", "ansible.builtin.validate_argument_spec", "ansible.legacy.validate_argument_spec")
# Longer than this, a line of ansible-core's own is cut (a value quoted in it can be anything).
MAX_LINE = 240

_UNSUPPORTED = re.compile(r"^(?:Unsupported parameters for \(.*?\) module: )?(?P<names>.+?)\. Supported parameters include: (?P<supported>.+?)\.?$")
_TYPE = re.compile(
    r"^argument '(?P<name>[^']+)' is of type (?P<type>\w+)(?: found in '(?P<parent>[^']+)'\.)? and we were unable to convert to (?P<want>\w+)"
)
_ELEMENTS = re.compile(r"^Elements value for option '(?P<name>[^']+)'(?: found in '(?P<parent>[^']+)')? is of type (?P<type>\w+)")
_CHOICES = re.compile(r"^value of (?P<name>\S+) must be one of: (?P<choices>.+?), got: (?P<got>.*?)(?: found in (?P<parent>\S+))?$")
_REQUIRED = re.compile(r"^missing required arguments: (?P<names>.+?)(?: found in (?P<parent>\S+))?$")


def _spec_at(spec: t.Mapping[str, t.Any], dotted: str) -> t.Optional[t.Mapping[str, t.Any]]:
    """The argument spec entry of C(a.b.c) (C(a)'s sub-option C(b)'s sub-option C(c))."""
    entry: t.Optional[t.Mapping[str, t.Any]] = None
    options: t.Mapping[str, t.Any] = spec
    for part in dotted.split("."):
        entry = options.get(part) if isinstance(options, dict) else None
        if not isinstance(entry, dict):
            return None
        options = entry.get("options") or {}
    return entry


def takes(entry: t.Optional[t.Mapping[str, t.Any]]) -> str:
    """What an argument spec entry takes, in a few words: C(a list of dict (keys - path, python, ...)), C(an int)."""
    if not entry:
        return ""
    kind = entry.get("type", "str")
    text = "a list of %s" % entry.get("elements", "str") if kind == "list" else ("an %s" % kind if kind[0] in "aeiou" else "a %s" % kind)
    if entry.get("choices"):
        text += " (one of: %s)" % ", ".join(str(c) for c in entry["choices"])
    return text


def _did_you_mean(key: str, known: t.Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "did you mean %s?" % close[0] if close else "it takes: %s" % ", ".join(known)


def _short(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def refusal_lines(errors: t.Sequence[str], spec: t.Mapping[str, t.Any]) -> t.List[str]:
    """One short line per error of ansible-core's argument validation, naming the variable, its type and what it takes."""
    lines: t.List[str] = []
    texts = [str(error) for error in errors]
    # ansible-core reports an element's conversion twice (the bare reason, then the sentence holding it): keep the sentence.
    for error in [text for text in texts if not any(text != other and text in other for other in texts)]:
        m = _UNSUPPORTED.match(error)
        if m:
            known = sorted(name.strip() for name in m.group("supported").split(","))
            for name in (n.strip() for n in m.group("names").split(",")):
                parent, key = name.rpartition(".")[::2]
                where = "%s: an entry has" % parent if parent else "unknown variable"
                lines.append("%s the unknown key %s - %s" % (where, key, _did_you_mean(key, known)))
            continue
        m = _TYPE.match(error)
        if m:
            name = "%s[].%s" % (m.group("parent"), m.group("name")) if m.group("parent") else m.group("name")
            entry = _spec_at(spec, "%s.%s" % (m.group("parent"), m.group("name")) if m.group("parent") else m.group("name"))
            lines.append("%s is a %s; it takes %s" % (name, m.group("type"), takes(entry) or m.group("want")))
            continue
        m = _ELEMENTS.match(error)
        if m:
            dotted = "%s.%s" % (m.group("parent"), m.group("name")) if m.group("parent") else m.group("name")
            lines.append("%s has an item that is a %s; it takes %s" % (dotted.replace(".", "[]."), m.group("type"), takes(_spec_at(spec, dotted))))
            continue
        m = _CHOICES.match(error)
        if m:
            name = "%s[].%s" % (m.group("parent"), m.group("name")) if m.group("parent") else m.group("name")
            lines.append(_short("%s is %s; it takes one of: %s" % (name, m.group("got"), m.group("choices"))))
            continue
        m = _REQUIRED.match(error)
        if m and m.group("parent"):
            lines.append("%s: an entry lacks %s, which is required" % (m.group("parent"), m.group("names")))
            continue
        lines.append(_short(error))
    return lines or ["(no error given)"]


def _result_of(result: t.Any) -> t.Dict[str, t.Any]:
    # ansible-core 2.19+ hands a CallbackTaskResult (.result); older ones a TaskResult (._result).
    found = getattr(result, "result", None)
    return found if isinstance(found, dict) else result._result


def refusal_message(task_result: t.Mapping[str, t.Any], role: str = "") -> t.Optional[str]:
    """The short message for a failed role argument validation result, or None for any other result."""
    if "argument_errors" not in task_result or not isinstance(task_result.get("argument_spec_data"), dict):
        return None
    lines = refusal_lines(task_result.get("argument_errors") or [], task_result["argument_spec_data"])
    head = "the variables of role %s were refused (ansible-doc -t role %s shows what each takes):" % (role, role) if role else (
        "the role's variables were refused:"
    )
    return "\n".join([head] + ["  - %s" % line for line in lines])


class CallbackModule(DefaultCallbackModule):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "mlinfra.mlhost.default"

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        task = result._task if hasattr(result, "_task") else result.task
        message = None
        if task.action in VALIDATE_ACTIONS:
            role = getattr(task, "_role", None)
            message = refusal_message(_result_of(result), role.get_name() if role is not None else "")
        if message is None:
            super().v2_runner_on_failed(result, ignore_errors)
            return
        if self._last_task_banner != task._uuid:
            self._print_task_banner(task)
        self._display.display(
            "fatal: [%s]: FAILED! => %s" % (self.host_label(result), message),
            color=C.COLOR_ERROR,
            stderr=self.get_option("display_failed_stderr"),
        )
        if ignore_errors:
            self._display.display("...ignoring", color=C.COLOR_SKIP)
