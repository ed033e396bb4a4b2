# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The ml_host role's own checks: what no module's plan and no argument spec can see.

Each module checks its own options when ml_host's validate phase plans it (check mode); the role's
argument specs check types and choices. What is left is here: settings that several phases share
(the mirrors, the CA certificates), settings read before any module runs (the CUDA version, decided
before the GPU phase is known) and checks across entries (an env path given twice). Messages name the
variable and the fix; they never hold a mirror URL (it may carry a token) nor a certificate's text.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: ml_host_problems
version_added: 1.0.0
short_description: The problems of the ml_host role's own settings (variable names, GPU, mirrors, CA certificates, CUDA, env paths)
description:
- What no module's plan and no argument spec checks - a defined C(mlhost_) variable that is no name of the collection
  but within two edits of one (one for a short name; a typo such as C(mlhost_python_env); other unknown C(mlhost_) names are left alone),
  C(mlhost_gpu) (auto, or a boolean, also as the strings true,
  false, yes and no that C(-e) gives), the mirrors (known keys, each an http(s)/file URL or an absolute
  path), the CA certificates (PEM text, or PEM files on the controller), the CUDA version (decided before the GPU phase),
  each Python environment path given once, and the stack check's environment.
- Messages name the variable and the fix; they never hold a mirror URL or a certificate's text.
positional: _input
options:
  _input:
    description:
      - The ml_host variables, as a dict - C(mlhost_gpu), C(mlhost_cuda_version), C(mlhost_cuda_extra_versions),
        C(mlhost_ca_certificates), C(mlhost_mirrors), C(mlhost_python_envs), C(mlhost_stack_check_python_env).
      - And C(defined), the names of the defined C(mlhost_) variables (C(query('ansible.builtin.varnames', '^mlhost_'))).
      - A key left out is not checked.
    type: dict
    required: true
author:
- mlinfra.mlhost developers (@mlinfra)
"""

EXAMPLES = r"""
- name: Check the settings
  ansible.builtin.assert:
    that: mlhost_problems == []
    fail_msg: "{{ mlhost_problems | join(' ') }}"
  vars:
    mlhost_problems: "{{ {'mlhost_mirrors': mlhost_mirrors} | mlinfra.mlhost.ml_host_problems }}"
"""

RETURN = r"""
_value:
  description: One message per problem; empty when the settings are good.
  type: list
  elements: str
"""

import os
import re
import typing as t
import urllib.parse

from ansible.errors import AnsibleFilterError

MIRROR_KEYS = ("apt", "nvidia", "pypi", "conda", "installer")
MIRROR_SCHEMES = ("http", "https", "file")
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_CUDA = re.compile(r"[0-9]{1,3}[.][0-9]{1,3}([.][0-9]{1,4})?")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")


def _shown(value: object) -> str:
    """A short, printable form of a value that is not a secret (a version, a path)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def cuda_version_problems(value: object, name: str = "mlhost_cuda_version") -> list[str]:
    if isinstance(value, str) and (value in ("", "auto") or _CUDA.fullmatch(value)):
        return []
    return [f'Set {name} to "", "auto" or a release such as "12.4" (it is {_shown(value)}); '
            "quote it in YAML so that 12.10 does not become 12.1."]


# mlhost_gpu as YAML and ansible-playbook -e give it: a boolean from YAML, a string from -e (true, false, yes, no).
GPU_TRUE = ("true", "yes")
GPU_FALSE = ("false", "no")


def gpu_problems(value: object) -> list[str]:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("auto",) + GPU_TRUE + GPU_FALSE):
        return []
    return [f"Set mlhost_gpu to auto, true or false (it is {_shown(value)}); true and false may come as strings "
            "(-e mlhost_gpu=true), yes and no too."]


def _pem_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return PEM_BEGIN.encode() in handle.read(1 << 20)
    except OSError:
        return False


def ca_certificate_problems(certs: object) -> list[str]:
    if not isinstance(certs, list):
        return ["mlhost_ca_certificates must be a list of PEM certificates or paths of PEM files on the controller."]
    problems = []
    for number, cert in enumerate(certs, start=1):
        if not isinstance(cert, str) or not cert.strip():
            problems.append(f"mlhost_ca_certificates item {number} is not a string: give PEM text or a path on the controller.")
        elif PEM_BEGIN in cert:
            continue
        elif "\n" in cert or "\x00" in cert or len(cert) > 4096:
            problems.append(f"mlhost_ca_certificates item {number} is text without {PEM_BEGIN}: give a PEM certificate.")
        elif not os.path.isfile(cert):
            problems.append(f"mlhost_ca_certificates item {number} ({_shown(cert)}) is neither PEM text nor a file on the "
                            "controller: give the certificate's PEM text or the path of its PEM file.")
        elif not _pem_file(cert):
            problems.append(f"mlhost_ca_certificates item {number} ({_shown(cert)}) holds no {PEM_BEGIN} line: "
                            "convert it to PEM (openssl x509 -inform der -in CERT -out CERT.pem).")
    return problems


def _mirror_ok(value: str) -> bool:
    if _BAD_CHARS.search(value):
        return False
    if value.startswith("/"):
        return True
    try:
        url = urllib.parse.urlsplit(value)
        url.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return url.scheme in MIRROR_SCHEMES and (bool(url.hostname) or (url.scheme == "file" and url.path.startswith("/")))


def mirror_problems(mirrors: object) -> list[str]:
    if not isinstance(mirrors, dict):
        return [f"mlhost_mirrors must be a dict with the keys {', '.join(MIRROR_KEYS)}."]
    problems = []
    unknown = sorted(str(k) for k in mirrors if k not in MIRROR_KEYS)
    if unknown:
        problems.append(f"mlhost_mirrors takes the keys {', '.join(MIRROR_KEYS)}, each a URL or local path. Unknown keys: {unknown}.")
    for key in MIRROR_KEYS:
        if key not in mirrors:
            continue
        value = mirrors[key]
        if not isinstance(value, str) or not value:
            problems.append(f"mlhost_mirrors.{key} is empty or not a string: give an http(s):// or file:// URL, or an absolute path.")
        elif not _mirror_ok(value):
            # The value may carry a token: never printed.
            problems.append(f"mlhost_mirrors.{key} is not an http(s):// or file:// URL with a host, nor an absolute path "
                            "(no spaces or control characters); the value is not shown, it may hold a credential.")
    return problems


def python_env_problems(envs: object, stack_check_env: object) -> list[str]:
    problems = []
    paths = [e["path"] for e in envs if isinstance(e, dict) and isinstance(e.get("path"), str)] if isinstance(envs, list) else []
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        problems.append(f"Each entry of mlhost_python_envs needs a path of its own, each path once: {', '.join(twice)} "
                        "is given more than once. Merge those entries.")
    if not isinstance(stack_check_env, str) or (stack_check_env and (not stack_check_env.startswith("/")
                                                                     or _BAD_CHARS.search(stack_check_env))):
        problems.append(f'mlhost_stack_check_python_env must be "" or an absolute path (it is {_shown(stack_check_env)}).')
    return problems


# --- variables: a typo of a documented name is refused, by name, with the name meant -------------------------

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_KNOWN: list[str] = []


def _names_set_by(tasks: object, out: set[str]) -> None:
    """The variable names the collection's own tasks set: register, set_fact, task vars, loop index_var."""
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        if isinstance(task.get("register"), str):
            out.add(task["register"])
        for key in ("vars", "ansible.builtin.set_fact"):
            if isinstance(task.get(key), dict):
                out.update(str(k) for k in task[key])
        index_var = (task.get("loop_control") or {}).get("index_var") if isinstance(task.get("loop_control"), dict) else None
        if isinstance(index_var, str):
            out.add(index_var)
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks"):
            _names_set_by(task.get(key), out)


def known_variables() -> list[str]:
    """Every mlhost_ name the collection knows: the roles' documented options (meta/argument_specs.yml), their
    defaults and vars, and what the roles' and playbooks' tasks set. Read from the collection's own files once."""
    if _KNOWN:
        return _KNOWN
    import glob

    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: 15 ms for the collection's files, 100 ms without

    def load(handle: t.Any) -> t.Any:
        return yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader

    names: set[str] = set()
    for path in sorted(glob.glob(os.path.join(_ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        with open(path, encoding="utf-8") as handle:
            specs = (load(handle) or {}).get("argument_specs") or {}
        for entry in specs.values():
            names.update((entry or {}).get("options") or {})
    for pattern in ("roles/*/defaults/main.yml", "roles/*/vars/main.yml"):
        for path in sorted(glob.glob(os.path.join(_ROOT, pattern))):
            with open(path, encoding="utf-8") as handle:
                names.update(load(handle) or {})
    for pattern in ("roles/*/tasks/*.yml", "playbooks/*.yml"):
        for path in sorted(glob.glob(os.path.join(_ROOT, pattern))):
            with open(path, encoding="utf-8") as handle:
                _names_set_by(load(handle), names)
    _KNOWN.extend(sorted(n for n in names if n.startswith("mlhost_")))
    return _KNOWN


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance (insert, delete, substitute), stopped early past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
        if min(row) > limit:
            return limit + 1
    return row[-1]


def variable_problems(defined: object) -> list[str]:
    """A defined mlhost_ variable that is no name of the collection but within two edits of one (one for a name of
    up to six letters after mlhost_) is a typo: refused,
    naming the one meant (mlhost_python_env -> mlhost_python_envs). Other unknown mlhost_ names are left alone (an
    inventory's own)."""
    if not isinstance(defined, (list, tuple)):
        return []
    known = set(known_variables())
    problems = []
    for name in sorted({str(n) for n in defined} - known):
        # Two edits on a long name, one on a short one (mlhost_case is an inventory's own, not mlhost_phase).
        limit = 2 if len(name) > len("mlhost_") + 6 else 1
        meant = sorted(k for k in known if _distance(name, k, limit) <= limit)
        if meant:
            problems.append(f"{name} is not a variable of mlinfra.mlhost and would be ignored: did you mean "
                            f"{' or '.join(meant)}? Rename it.")
    return problems


def cuda_extra_problems(value: object) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [problem for v in value if v not in ("", "auto")
                for problem in cuda_version_problems(v, "each of mlhost_cuda_extra_versions")]
    return ['mlhost_cuda_extra_versions must be a list of quoted releases such as ["11.8", "12.4"] '
            f"(it is {_shown(value)}); unquoted, YAML reads 12.10 as 12.1."]


def ml_host_problems(settings: t.Mapping[str, t.Any]) -> list[str]:
    """Every problem of ml_host's own settings, as messages naming the variable and the fix; [] when none.

    A key that is not in ``settings`` is not checked (its default is good): mlhost_cuda_version must come as given,
    not through ``| string``, so that an unquoted 12.10 (the float 12.1) is refused."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError("mlinfra.mlhost.ml_host_problems takes a dict of the ml_host role's variables.")
    return (variable_problems(settings.get("defined", []))
            + gpu_problems(settings.get("mlhost_gpu", "auto"))
            + cuda_extra_problems(settings.get("mlhost_cuda_extra_versions", []))
            + cuda_version_problems(settings.get("mlhost_cuda_version", ""))
            + ca_certificate_problems(settings.get("mlhost_ca_certificates", []))
            + mirror_problems(settings.get("mlhost_mirrors", {}))
            + python_env_problems(settings.get("mlhost_python_envs", []), settings.get("mlhost_stack_check_python_env", "")))


class FilterModule:
    def filters(self):
        return {"ml_host_problems": ml_host_problems}
