# SPDX-License-Identifier: GPL-3.0-or-later
"""The example inventories of docs/quickstart-gpu-fleet.md validate as written.

Each inventory under inventory/examples/ is parsed by ``ansible-inventory --list``, then a local playbook runs on
every host of every inventory (no connection is made: the tasks are controller-side action plugins) and checks the
host's variables as the ml_host role does before it changes anything:

- ``ansible.builtin.validate_argument_spec`` with the main entry point of every role's meta/argument_specs.yml (the
  ml_host role passes its variables through to the phase roles, which validate them when they are included);
- the ml_host role's own settings check, the filter ``mlinfra.mlhost.ml_host_problems`` that
  roles/ml_host/tasks/checks.yml runs (typos of variable names, floats where versions go, mirrors, CA certificates,
  env paths), given every ``mlhost_`` variable the host defines.

Not covered here (it needs the real host): the validate phase's plans, in which each module checks its options
against what the host has (the distribution carries the branch, the repository the CUDA release, the env's options).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "inventory" / "examples").glob("*.yml"))
ROLES = ("ml_host", "build_tools", "nvidia_driver", "cuda_toolkit", "python_env", "miniforge")
BIN = pathlib.Path(sys.executable).parent


def _env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
                ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build" / "collections")))


def _playbook(tmp_path: pathlib.Path) -> pathlib.Path:
    # One task with the union of the roles' main entry points (a name two roles document has the same type and
    # choices in both: test_a_shared_variable_is_specified_alike), which costs a fifth of one task per role.
    union: dict = {}
    for options in _main_options().values():
        union.update(options)
    tasks = [{"name": "argument specs of " + ", ".join(ROLES),
              "ansible.builtin.validate_argument_spec": {"argument_spec": union}}]
    # As roles/ml_host/tasks/checks.yml hands them over, but only the variables the host defines (no role defaults
    # here: a key left out is not checked, and its default is good).
    checked = ["mlhost_gpu", "mlhost_cuda_version", "mlhost_cuda_extra_versions", "mlhost_ca_certificates",
               "mlhost_mirrors", "mlhost_python_envs", "mlhost_stack_check_python_env"]
    tasks.append({
        "name": "ml_host settings check", "ansible.builtin.assert": {
            "that": "problems == []", "fail_msg": "PROBLEMS {{ problems | join(' ') }}", "quiet": True},
        "vars": {
            "names": "{{ query('ansible.builtin.varnames', '^mlhost_') }}",
            "given": "{{ dict(names | zip(query('ansible.builtin.vars', *names))) }}",
            "problems": ("{{ ({'defined': names} | combine(given | dict2items | selectattr('key', 'in', "
                         + json.dumps(checked) + ") | items2dict)) | mlinfra.mlhost.ml_host_problems }}"),
        }})
    tasks.append({"name": "host validated", "ansible.builtin.debug": {"msg": "VALIDATED {{ inventory_hostname }}"}})
    book = tmp_path / "validate.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]), encoding="utf-8")
    return book


def _main_options() -> dict[str, dict]:
    return {role: yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
            ["argument_specs"]["main"]["options"] for role in ROLES}


def test_a_shared_variable_is_specified_alike():
    seen: dict[str, tuple[str, dict]] = {}
    for role, options in _main_options().items():
        for name, option in options.items():
            shape = {k: option.get(k) for k in ("type", "elements", "choices")}
            if name in seen:
                assert seen[name][1] == shape, f"{name}: {seen[name][0]} says {seen[name][1]}, {role} says {shape}"
            seen[name] = (role, shape)


def _hosts(inventories: list[pathlib.Path]) -> dict[str, list[str]]:
    """Each inventory's hosts, as ``ansible-inventory --list`` reads them (the runs side by side)."""
    runs = {inventory.name: subprocess.Popen([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
                                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for inventory in inventories}
    hosts = {}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "WARNING" not in err, (name, err[-3000:])
        hosts[name] = sorted(json.loads(out).get("_meta", {}).get("hostvars", {}))
    return hosts


def _validate(tmp_path: pathlib.Path, inventories: list[pathlib.Path]) -> subprocess.CompletedProcess:
    argv = [str(BIN / "ansible-playbook"), "--check", "--forks", "16"]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    return subprocess.run([*argv, str(_playbook(tmp_path))], env=_env(), cwd=tmp_path, capture_output=True, text=True,
                          check=False)


def test_the_examples_are_there():
    assert {"debian12", "debian13", "ubuntu2404", "rocky9", "mixed"} <= {p.stem for p in EXAMPLES}
    guide = (ROOT / "docs" / "quickstart-gpu-fleet.md").read_text(encoding="utf-8")
    for example in EXAMPLES:
        assert f"inventory/examples/{example.name}" in guide, f"docs/quickstart-gpu-fleet.md does not name {example.name}"


def test_every_example_inventory_validates_as_written(tmp_path):
    hosts: dict[str, str] = {}
    for name, found in _hosts(EXAMPLES).items():
        assert found, f"{name} has no host"
        for host in found:
            assert host not in hosts, f"{host} is in both {hosts.get(host)} and {name}: keep the names apart"
            hosts[host] = name
    run = _validate(tmp_path, EXAMPLES)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    validated = {host for host in hosts if f"VALIDATED {host}" in run.stdout}
    assert validated == set(hosts), sorted(set(hosts) - validated)


# A copy of an example with one mistake per host: each must be refused, by name.
BROKEN = {
    "typo-envs": ({"mlhost_python_env": [{"path": "/opt/mlhost/venvs/torch", "packages": ["torch"]}]},
                  "did you mean mlhost_python_envs?"),
    "float-cuda": ({"mlhost_cuda_version": 12.1}, "mlhost_cuda_version"),
    "bad-source": ({"mlhost_nvidia_driver_source": "nvidia"}, "mlhost_nvidia_driver_source"),
    "bad-reboot": ({"mlhost_reboot": "always"}, "mlhost_reboot"),
    "typo-branch": ({"mlhost_nvidia_driver_brnch": "580"}, "did you mean mlhost_nvidia_driver_branch?"),
}


def test_a_broken_copy_is_refused(tmp_path):
    good = yaml.safe_load((ROOT / "inventory" / "examples" / "debian13.yml").read_text(encoding="utf-8"))
    group = good["all"]["children"]["gpu_hosts"]
    group["hosts"] = {f"{case}.example.internal": dict(change) for case, (change, dummy) in BROKEN.items()}
    group["hosts"]["fine.example.internal"] = {}
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(good), encoding="utf-8")
    run = _validate(tmp_path, [broken])
    assert run.returncode != 0
    out = run.stdout
    assert "VALIDATED fine.example.internal" in out, out[-4000:]
    for case, (dummy, message) in BROKEN.items():
        host = f"{case}.example.internal"
        assert f"VALIDATED {host}" not in out, f"{case} passed: {out[-4000:]}"
        failed = [line for line in out.splitlines() if line.startswith(f"fatal: [{host}]")]
        assert failed and message in failed[0], (case, failed, out[-4000:])
