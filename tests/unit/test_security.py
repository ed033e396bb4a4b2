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


def argument_specs() -> dict[str, dict[str, dict[str, object]]]:
    """module -> option -> spec, read from each module's ARGUMENT_SPEC = {...} (or AnsibleModule(argument_spec={...})) literal."""
    specs = {}
    for path in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # AnsibleModule(argument_spec={...}), or the module-level ARGUMENT_SPEC = {...} of the one entry
            if isinstance(node, ast.keyword) and node.arg == "argument_spec" and isinstance(node.value, ast.Dict):
                literal = node.value
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                  and any(isinstance(target, ast.Name) and target.id == "ARGUMENT_SPEC" for target in node.targets)):
                literal = node.value
            else:
                continue
            specs[path.stem] = {
                ast.literal_eval(k): {ast.literal_eval(sk): sv for sk, sv in zip(v.keys, v.values)}
                for k, v in zip(literal.keys, literal.values)
                if k is not None and isinstance(v, ast.Dict)
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


ENV_LOOPS = {  # the one task file per env component, its module, and the list it loops over
    ROOT / "roles" / "python_env" / "tasks" / "env.yml": ("mlinfra.mlhost.python_env", "mlhost_python_envs"),
    ROOT / "roles" / "miniforge" / "tasks" / "conda_env.yml": ("mlinfra.mlhost.conda_env", "mlhost_conda_envs"),
}
TOKEN_ENVS = [{"path": "/opt/a", "name": "train", "index_url": "https://u:TOKEN@h/simple", "extra_index_urls": ["https://u:T2@h/x"],
               "find_links": ["https://u:T3@h/w"], "torch_index_url": "https://u:T4@h/t", "packages": ["six"], "bogus": 1}]


def jinja_env() -> jinja2.Environment:
    env = jinja2.Environment()
    env.filters.update(FilterModule().filters())
    return env


def env_task(path: pathlib.Path) -> dict:
    module = ENV_LOOPS[path][0]
    return next(t for t in yaml.safe_load(path.read_text()) if module in t)


def render(template: str, **variables: object) -> str:
    return jinja_env().from_string(template.replace("}}", "| tojson }}", 1) if template.count("}}") == 1 else template).render(**variables)


def test_env_loops_print_no_secret():
    """Loop items (printed at -v) hold no option of the entry but its path, name, prefix, file and state; labelled."""
    for path, (module, var) in ENV_LOOPS.items():
        task = env_task(path)
        assert module in task
        rendered = render(task["loop"].strip(), **{var: TOKEN_ENVS})
        for secret in ("TOKEN", "T2", "T3", "T4", "six", "bogus"):
            assert secret not in rendered, f"{path}: loop items carry {secret}"
        assert "/opt/a" in rendered or "train" in rendered
        assert "label" in task["loop_control"] and "index_var" in task["loop_control"]


def test_every_role_loop_over_envs_labels_its_items():
    found = 0
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            loop = str(task.get("loop", ""))
            if re.search(r"mlhost_(python|conda)_envs", loop):
                found += 1
                assert "label" in task.get("loop_control", {}), f"{path}: {task['name']} prints whole env items"
                assert "{{ item }}" not in str(task), f"{path}: {task['name']} templates a whole item"
    assert found >= 2


def test_env_entries_reach_the_module_whole():
    """The entry, merged over the defaults, is the module's arguments: no key dropped (an unknown one reaches the spec)."""
    for path, (module, var) in ENV_LOOPS.items():
        task = env_task(path)
        assert set(task) <= {"name", module, "args", "loop", "loop_control", "register", "tags", "when"}, path
        args = jinja_env().from_string(task["args"].strip().replace("}}", "| tojson }}")).render(
            **{var: TOKEN_ENVS, "mlhost_env_index": 0, "mlhost_python_env_defaults": {"ca_bundle": "/ca.pem"},
               "mlhost_conda_env_defaults": {"ca_bundle": "/ca.pem"}, "mlhost_miniforge": {}})
        merged = yaml.safe_load(args)
        assert merged == {"ca_bundle": "/ca.pem", **TOKEN_ENVS[0]}, path


def test_the_validate_phase_plans_each_component_through_its_own_task_file():
    checks = yaml.safe_load((ROOT / "roles" / "ml_host" / "tasks" / "checks.yml").read_text())
    included = {(t["ansible.builtin.include_role"]["name"], t["ansible.builtin.include_role"]["tasks_from"])
                for t in checks if "ansible.builtin.include_role" in t}
    assert included == {("mlinfra.mlhost.build_tools", "validate"), ("mlinfra.mlhost.nvidia_driver", "validate"),
                        ("mlinfra.mlhost.cuda_toolkit", "validate"), ("mlinfra.mlhost.python_env", "env"),
                        ("mlinfra.mlhost.miniforge", "validate")}
    python = next(t for t in checks if t.get("ansible.builtin.include_role", {}).get("tasks_from") == "env")
    assert python["ansible.builtin.include_role"]["apply"]["check_mode"] is True
    assert "when" not in python or "requirements" not in str(python["when"])  # every env is planned, requirements too
    for role, files in {"build_tools": ["build_tools.yml"], "nvidia_driver": ["driver.yml"], "cuda_toolkit": ["toolkit.yml"],
                        "miniforge": ["miniforge.yml", "conda_env.yml"]}.items():
        validate = yaml.safe_load((ROOT / "roles" / role / "tasks" / "validate.yml").read_text())
        main = (ROOT / "roles" / role / "tasks" / "main.yml").read_text()
        for name in files:
            inc = [t["ansible.builtin.include_tasks"] for t in validate if t.get("ansible.builtin.include_tasks", {}).get("file") == name]
            assert inc and inc[0]["apply"]["check_mode"] is True, f"{role}: validate does not plan {name} in check mode"
            assert f"ansible.builtin.import_tasks: {name}" in main, f"{role}: main does not run {name}"
        module_calls = [line for line in main.splitlines() if re.match(r"\s*-?\s*mlinfra\.mlhost\.", line)]
        assert module_calls == [] or role == "cuda_toolkit", f"{role}: main.yml calls a module beside its task file"


def test_the_effective_env_options_are_not_printed():
    tasks = yaml.safe_load((ROOT / "roles" / "ml_host" / "tasks" / "settings.yml").read_text())
    facts = [t for t in tasks if "ansible.builtin.set_fact" in t]
    assert any("mlhost_python_env_defaults_effective" in str(t) for t in facts)
    assert facts and all(t.get("no_log") is True for t in facts)  # they hold mirror URLs, tokens and all


def test_every_set_fact_of_mirror_or_proxy_data_is_no_log():
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            body = task.get("ansible.builtin.set_fact")
            if body is not None and re.search(r"mlhost_(mirrors|proxy_env)\b|_outcome\b|toolkit_results\b", str(body)):
                assert task.get("no_log") is True, f"{path}: {task['name']} prints mirror or proxy data at -v"


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
        fileset.apply(fileset.plan({"/etc/apt/sources.list.d/new/x.sources": b"Types: deb\n"}))
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
