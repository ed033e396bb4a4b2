# SPDX-License-Identifier: GPL-3.0-or-later
"""Security properties checked without a host: secrets kept out of logs, signed repositories, file modes.

The faults scenario checks the same on a real host (a whole -vvv log grepped for secrets,
world-writable files before/after, owners); these tests pin the code that makes it so.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re

import jinja2
import yaml
from ansible.plugins.filter.core import FilterModule

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import Runner

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"(pass|token|secret|index_url|proxy)", re.I)
# Options whose names look secret but are not (none: a torch mirror URL may hold a token too).
NOT_SECRET: set[str] = set()
KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----\n"
STRIP = "map('rejectattr', 'key', 'in', ['index_url', 'extra_index_urls'])"


def argument_specs() -> dict[str, dict[str, dict[str, object]]]:
    """module -> option -> spec, read from each module's ARGUMENT_SPEC = {...} (or AnsibleModule(argument_spec={...})) literal."""
    specs = {}
    for path in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Assign) and any(isinstance(n, ast.Name) and n.id == "ARGUMENT_SPEC" for n in node.targets)
                    and isinstance(node.value, ast.Dict)):
                node = ast.keyword(arg="argument_spec", value=node.value)
            if isinstance(node, ast.keyword) and node.arg == "argument_spec" and isinstance(node.value, ast.Dict):
                specs[path.stem] = {
                    ast.literal_eval(k): {ast.literal_eval(sk): sv for sk, sv in zip(v.keys, v.values)}
                    for k, v in zip(node.value.keys, node.value.values)
                    if isinstance(v, ast.Dict)
                }
    return specs


def test_every_secret_carrying_option_is_no_log():
    specs = argument_specs()
    assert {"python_env", "conda_env", "miniforge"} <= set(specs)
    checked = []
    for module, options in specs.items():
        for name, spec in options.items():
            if SECRET_NAME.search(name) and name not in NOT_SECRET:
                value = spec.get("no_log")
                assert isinstance(value, ast.Constant) and value.value is True, f"{module}.{name} is not no_log"
                checked.append(f"{module}.{name}")
    assert {"python_env.index_url", "python_env.extra_index_urls", "conda_env.index_url", "miniforge.proxy_servers"} <= set(checked)


def test_python_env_credential_options_are_no_log():
    options = argument_specs()["python_env"]
    for name in ("index_url", "extra_index_urls", "torch_index_url", "find_links"):
        value = options[name].get("no_log")
        assert isinstance(value, ast.Constant) and value.value is True, f"python_env.{name} is not no_log"


def render_loop(envs: list[dict[str, object]]) -> list[dict[str, object]]:
    env = jinja2.Environment()
    env.filters.update(FilterModule().filters())
    loop = yaml.safe_load((ROOT / "roles" / "python_env" / "tasks" / "main.yml").read_text())[0]["loop"]
    return env.from_string(loop.replace("}}", "| tojson }}")).render(mlhost_python_envs=envs)


def test_env_loops_print_no_index_url():
    roles = {
        "python_env": ROOT / "roles" / "python_env" / "tasks" / "main.yml",
        "ml_host": ROOT / "roles" / "ml_host" / "tasks" / "checks.yml",
    }
    for role, path in roles.items():
        tasks = yaml.safe_load(path.read_text())
        loops = [t["loop"] for t in tasks if "mlinfra.mlhost.python_env" in t]
        assert loops and all(STRIP in loop for loop in loops), f"{role}: a python_env loop prints its items whole"
    envs = [{"path": "/opt/a", "index_url": "https://u:TOKEN@h/simple", "extra_index_urls": ["https://u:T2@h/x"],
             "packages": ["six"]}]
    rendered = render_loop(envs)
    assert "TOKEN" not in rendered and "T2" not in rendered and "/opt/a" in rendered and "six" in rendered


def test_python_env_role_still_passes_the_index_url():
    text = (ROOT / "roles" / "python_env" / "tasks" / "main.yml").read_text()
    assert "combine(mlhost_python_envs[mlhost_env_index])" in text and "index_var: mlhost_env_index" in text
    assert 'index_url: "{{ mlhost_env.index_url | default(omit) }}"' in text


def test_the_effective_env_options_are_not_printed():
    tasks = yaml.safe_load((ROOT / "roles" / "ml_host" / "tasks" / "checks.yml").read_text())
    task = next(t for t in tasks if "mlhost_python_env_defaults_effective" in str(t.get("ansible.builtin.set_fact", "")))
    assert task["no_log"] is True  # it holds the pypi mirror URL, token and all


def test_nvidia_apt_source_is_signed_by_its_own_keyring():
    files = _nvidia_repo.nvidia_repo_files("apt", "https://mirror.example/cuda/debian12/x86_64/", KEY)
    keyring = _nvidia_repo.apt_keyring_path(KEY)
    source = files[_nvidia_repo.APT_SOURCE].decode()
    assert f"Signed-By: {keyring}\n" in source and files[keyring] == KEY
    assert "trusted=yes" not in source and "allow-insecure" not in source.lower()


def test_nvidia_dnf_repo_checks_signatures():
    files = _nvidia_repo.nvidia_repo_files("dnf", "https://mirror.example/cuda/rhel9/x86_64/", KEY)
    repo = files[_nvidia_repo.DNF_REPO].decode()
    assert "gpgcheck=1\n" in repo and f"gpgkey=file://{_nvidia_repo.DNF_KEY}\n" in repo


def test_managed_files_are_not_world_writable_under_umask_zero(tmp_path):
    """Under umask 0, os.makedirs made intermediate directories 0777; every module's Runner now masks 022."""
    old = os.umask(0)
    try:
        Runner(object())
        assert os.umask(0) == 0o022
        os.umask(0o022)
        fileset = _nvidia_repo.FileSet(str(tmp_path))
        assert fileset.apply("/etc/apt/sources.list.d/new/x.sources", b"Types: deb\n")
    finally:
        os.umask(old)
    for path in [tmp_path / "etc", tmp_path / "etc/apt/sources.list.d/new", tmp_path / "etc/apt/sources.list.d/new/x.sources"]:
        assert not path.stat().st_mode & 0o022, f"{path} is group- or world-writable"


def test_runner_keeps_a_stricter_umask():
    old = os.umask(0o077)
    try:
        Runner(object())
        assert os.umask(old) == 0o077
    finally:
        os.umask(old)
