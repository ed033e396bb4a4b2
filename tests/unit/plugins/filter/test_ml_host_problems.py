# SPDX-License-Identifier: GPL-3.0-or-later
"""The ml_host role's own checks (plugins/filter/ml_host_problems.py): tables of good and bad settings."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mlinfra.mlhost.plugins.filter.ml_host_problems import FilterModule

PROBLEMS = FilterModule().filters()["ml_host_problems"]
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TOKEN = "s3cr3t-T0KEN"


def problems(**settings):
    return PROBLEMS(settings)


def test_the_defaults_have_no_problem():
    assert problems(mlhost_cuda_version="", mlhost_ca_certificates=[], mlhost_mirrors={}, mlhost_python_envs=[],
                    mlhost_stack_check_python_env="") == []


@pytest.mark.parametrize("version", ["", "auto", "12.4", "12.10", "11.8.89"])
def test_cuda_versions_taken(version):
    assert problems(mlhost_cuda_version=version) == []


@pytest.mark.parametrize("version", ["12.x", "12", "12.4\n", " 12.4", "１２.４", "12.4.1.2", "latest", 12.4, None, "12..4"])
def test_cuda_versions_refused_naming_the_variable_and_the_yaml_float(version):
    [msg] = problems(mlhost_cuda_version=version)
    assert "mlhost_cuda_version" in msg and "quote it in YAML" in msg


def test_ca_certificates(tmp_path):
    pem_file, der_file = tmp_path / "ca.pem", tmp_path / "ca.der"
    pem_file.write_text(PEM)
    der_file.write_bytes(b"\x30\x82\x01\x0a")
    assert problems(mlhost_ca_certificates=[PEM, str(pem_file)]) == []
    cases = {
        str(tmp_path / "none.pem"): "is neither PEM text nor a file on the controller",
        str(der_file): "holds no -----BEGIN CERTIFICATE----- line",
        "line one\nline two": "is text without -----BEGIN CERTIFICATE-----",
        "": "is not a string",
    }
    for cert, words in cases.items():
        [msg] = problems(mlhost_ca_certificates=[PEM, cert])
        assert words in msg and "item 2" in msg, msg
    assert problems(mlhost_ca_certificates=[1])[0].endswith("give PEM text or a path on the controller.")
    assert "must be a list" in problems(mlhost_ca_certificates="x")[0]


@pytest.mark.parametrize("mirrors", [
    {"apt": "http://deb.example/debian", "pypi": f"https://u:{TOKEN}@pypi.example/simple", "conda": "file:///srv/channel",
     "nvidia": "/srv/nvidia", "installer": "https://[::1]:8080/Miniforge3.sh"},
])
def test_mirrors_taken(mirrors):
    assert problems(mlhost_mirrors=mirrors) == []


@pytest.mark.parametrize("mirrors, words", [
    ({"pip": "https://pypi.org/simple"}, "Unknown keys: ['pip']"),
    ({"pypi": ""}, "mlhost_mirrors.pypi is empty or not a string"),
    ({"pypi": 3}, "mlhost_mirrors.pypi is empty or not a string"),
    ({"pypi": f"ftp://u:{TOKEN}@h/simple"}, "mlhost_mirrors.pypi is not an http(s):// or file:// URL"),
    ({"pypi": f"https://u:{TOKEN}@h/simple\n"}, "mlhost_mirrors.pypi is not"),
    ({"pypi": f"https://u:{TOKEN}@h:port/simple"}, "mlhost_mirrors.pypi is not"),
    ({"apt": f"https://u:{TOKEN}@[::1/x"}, "mlhost_mirrors.apt is not"),
    ({"nvidia": f"relative/{TOKEN}"}, "mlhost_mirrors.nvidia is not"),
    ({"conda": f"https:///{TOKEN}"}, "mlhost_mirrors.conda is not"),
    ({"installer": f"https://h/{TOKEN} x"}, "mlhost_mirrors.installer is not"),
    ([], "mlhost_mirrors must be a dict"),
])
def test_mirrors_refused_without_printing_them(mirrors, words):
    msg = " ".join(problems(mlhost_mirrors=mirrors))
    assert words in msg and TOKEN not in msg


def test_an_env_path_given_twice_is_refused_once():
    envs = [{"path": "/opt/envs/a"}, {"path": "/opt/envs/b"}, {"path": "/opt/envs/a", "index_url": f"https://u:{TOKEN}@h/"}]
    [msg] = problems(mlhost_python_envs=envs)
    assert "each path once" in msg and "/opt/envs/a" in msg and "/opt/envs/b" not in msg and TOKEN not in msg
    assert problems(mlhost_python_envs=[{"path": "/opt/envs/a"}, {"packages": ["six"]}]) == []  # no path: the module refuses it


@pytest.mark.parametrize("value, ok", [("", True), ("/opt/envs/a", True), ("envs/a", False), ("/opt/a\n", False), (None, False)])
def test_stack_check_env(value, ok):
    assert (problems(mlhost_stack_check_python_env=value) == []) is ok


def test_not_a_dict_is_an_error():
    with pytest.raises(AnsibleFilterError, match="takes a dict"):
        PROBLEMS(["mlhost_mirrors"])


@pytest.mark.parametrize("value", ["auto", True, False, "true", "false", "True", "FALSE", "yes", "no"])
def test_gpu_takes_auto_and_booleans_as_yaml_and_dash_e_give_them(value):
    # -e mlhost_gpu=true gives the string "true": the argument spec's choices [auto, true, false] refused it.
    assert problems(mlhost_gpu=value) == []


@pytest.mark.parametrize("value", ["maybe", "1", 1, None, "", "auto ", ["true"]])
def test_gpu_refused_by_name(value):
    [msg] = problems(mlhost_gpu=value)
    assert msg.startswith("Set mlhost_gpu to auto, true or false")


def test_the_role_hands_the_values_as_given():
    # Through `| string` an unquoted 12.10 (the float 12.1) reached the check as "12.1" and passed; and the GPU
    # phase's decision reads the same strings the check takes.
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parents[4]
    checks = (root / "roles" / "ml_host" / "tasks" / "checks.yml").read_text()
    assert "'mlhost_cuda_version': mlhost_cuda_version," in checks and "'mlhost_gpu': mlhost_gpu," in checks
    for path in ("roles/ml_host/tasks/facts.yml", "roles/nvidia_driver/tasks/validate.yml", "roles/cuda_toolkit/tasks/validate.yml"):
        text = str(yaml.safe_load((root / path).read_text()))
        assert "lower in ['true', 'yes']" in text, path


@pytest.mark.parametrize("typo, meant", [
    ("mlhost_python_env", "mlhost_python_envs"),        # the issue's: ran green with "Python envs: none"
    ("mlhost_cuda_verison", "mlhost_cuda_version"),
    ("mlhost_condaenvs", "mlhost_conda_envs"),
    ("mlhost_build_tool_profiles", "mlhost_build_tools_profiles"),
    ("mlhost_nvidia_drive_branch", "mlhost_nvidia_driver_branch"),
])
def test_a_typo_of_a_variable_is_refused_naming_the_one_meant(typo, meant):
    [msg] = problems(defined=["mlhost_gpu", typo])
    assert msg.startswith(f"{typo} is not a variable of mlinfra.mlhost") and meant in msg


def test_every_name_the_collection_sets_or_documents_is_known():
    from ansible_collections.mlinfra.mlhost.plugins.filter import ml_host_problems as mod

    known = mod.known_variables()
    for name in ("mlhost_python_envs", "mlhost_gpu", "mlhost_reboot_timeout", "mlhost_phase", "mlhost_failure",
                 "mlhost_plan_first_change", "mlhost_python_env_results", "mlhost_env_index", "mlhost_fleet_hosts",
                 "mlhost_problems", "mlhost_phase_order", "mlhost_cuda_host_compiler_plan"):
        assert name in known, name
    assert problems(defined=known) == []


def test_the_test_beds_own_mlhost_names_are_not_taken_for_typos():
    # Inventories may hold mlhost_ names of their own (the scenarios and the bench do); only a near miss of a
    # collection's name is refused. Every mlhost_ name in the repository's inventories, scenarios and bench passes
    # (but bad_input's, which holds typos on purpose).
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[4]
    names = set()
    for folder in ("molecule", "bench", "inventory", "playbooks", "tests/testbed"):
        for path in (root / folder).rglob("*"):
            if path.suffix in (".yml", ".yaml", ".py", ".json", ".ini") and path.is_file() and "bad_input" not in path.parts:
                names.update(re.findall(r"\b(mlhost_[a-z0-9_]+)\b", path.read_text(encoding="utf-8", errors="replace")))
    assert len(names) > 50
    assert problems(defined=sorted(names)) == []


@pytest.mark.parametrize("value, ok", [([], True), (["11.8", "12.4"], True), ([12.4], False), ("12.4", False), (["12.x"], False)])
def test_cuda_extra_versions(value, ok):
    assert (problems(mlhost_cuda_extra_versions=value) == []) is ok


def test_a_typo_given_with_dash_e_is_seen_through_varnames(tmp_path):
    # The role hands the filter query('ansible.builtin.varnames', '^mlhost_'); checked through ansible-playbook itself.
    # (Not a bad_input case: that scenario sets each case's variables as facts, and a name that is no role default
    # cannot be reset, so it would reach every later case.)
    import json
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[4]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "check", "ansible.builtin.assert": {
            "that": "problems == []", "fail_msg": "{{ problems | join(' ') }}", "quiet": True},
        "vars": {"problems": "{{ {'defined': query('ansible.builtin.varnames', '^mlhost_')} | mlinfra.mlhost.ml_host_problems }}"},
    }]}]))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(root / ".build" / "collections")))
    playbook = str(pathlib.Path(sys.executable).parent / "ansible-playbook")

    def run(*extra):
        return subprocess.run([playbook, "-i", "localhost,", "-c", "local", *extra, str(book)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=False)

    good = run("-e", "mlhost_python_envs=[]", "-e", "mlhost_fleet_gpu=true")
    assert good.returncode == 0, good.stdout[-2000:]
    typo = run("-e", '{"mlhost_python_env": [{"path": "/opt/envs/x", "packages": ["six"]}]}')
    assert typo.returncode == 2 and "did you mean mlhost_python_envs?" in typo.stdout, typo.stdout[-2000:]
