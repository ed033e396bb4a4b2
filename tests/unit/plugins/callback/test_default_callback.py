# SPDX-License-Identifier: GPL-3.0-or-later
"""mlinfra.mlhost.default: a failed role argument validation is a few short lines, everything else as ansible.builtin.default."""

from __future__ import annotations

import json
import pathlib
import types

import pytest

from ansible_collections.mlinfra.mlhost.plugins.callback import default

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "argument_errors"


def captured(name: str) -> dict:
    # The registered result of validate_argument_spec (see tests/unit/fixtures/README.md).
    result = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert len(json.dumps(result)) > 14000, "the captured result holds ml_host's whole spec"
    return result


def lines(name: str) -> list:
    result = captured(name)
    return default.refusal_lines(result["argument_errors"], result["argument_spec_data"])


def test_a_misspelt_env_key_is_named_with_the_key_it_is_closest_to():
    assert lines("typo_key") == ["mlhost_python_envs: an entry has the unknown key torch_cude - did you mean torch_cuda?"]
    assert lines("pakages") == [
        "mlhost_python_envs: an entry has the unknown key pakages - did you mean packages?",
        "mlhost_python_envs: an entry has the unknown key requirments - did you mean requirements?",
    ]


def test_a_key_close_to_nothing_lists_the_keys_an_entry_takes():
    spec = captured("typo_key")["argument_spec_data"]
    error = "mlhost_python_envs.flavour. Supported parameters include: backend, packages, path."
    assert default.refusal_lines([error], spec) == ["mlhost_python_envs: an entry has the unknown key flavour - it takes: backend, packages, path"]


def test_type_errors_name_the_variable_its_type_and_what_it_takes():
    assert lines("str_for_list") == ["mlhost_python_envs has an item that is a str; it takes a list of dict"]
    assert lines("dict_for_list") == ["mlhost_conda_envs is a dict; it takes a list of dict"]
    assert lines("bad_type") == [
        "mlhost_expected_gpus is a str; it takes an int",
        "mlhost_reboot is yes; it takes one of: never, if_required",
    ]
    assert lines("nested_type") == [
        "mlhost_python_envs[].offline is a str; it takes a bool",
        "mlhost_python_envs[].packages is a dict; it takes a list of str",
        "mlhost_python_envs[].backend is conda; it takes one of: auto, uv, pip",
    ]
    assert lines("no_path") == [
        "mlhost_ca_certificates is a dict; it takes a list of str",
        "mlhost_python_envs: an entry lacks path, which is required",
    ]


def test_an_error_of_another_shape_is_kept_and_cut_short():
    out = default.refusal_lines(["something new: " + "x" * 1000], {})
    assert len(out) == 1 and out[0].startswith("something new: ") and len(out[0]) == default.MAX_LINE


def test_only_a_validation_result_is_rewritten():
    assert default.refusal_message({"failed": True, "msg": "boom"}) is None
    message = default.refusal_message(captured("typo_key"), "mlinfra.mlhost.ml_host")
    assert message.splitlines()[0].startswith("the variables of role mlinfra.mlhost.ml_host were refused")
    assert "argument_spec_data" not in message and len(message) < 300


class FakeDisplay:
    verbosity = 0

    def __init__(self):
        self.shown = []

    def display(self, msg, **_):
        self.shown.append(msg)

    def banner(self, msg, **_):
        self.shown.append(msg)


def callback(monkeypatch) -> default.CallbackModule:
    plugin = default.CallbackModule()
    plugin._display = FakeDisplay()
    monkeypatch.setattr(plugin, "get_option", lambda name: False)
    monkeypatch.setattr(plugin, "_print_task_banner", lambda task: plugin._display.display("TASK banner"))
    return plugin


def fake_result(action: str, result: dict):
    role = types.SimpleNamespace(get_name=lambda: "mlinfra.mlhost.ml_host")
    task = types.SimpleNamespace(action=action, _uuid="u1", _role=role, loop=None, get_path=lambda: "")
    host = types.SimpleNamespace(get_name=lambda: "gpu01")
    # The shape ansible-core 2.19+ hands a callback (CallbackTaskResult: .task, .result, .host).
    return types.SimpleNamespace(task=task, result=result, host=host, _host=host, _task=task, _result=result,
                                 task_name="t")


@pytest.mark.parametrize("case", ["typo_key", "pakages", "str_for_list", "dict_for_list", "bad_type", "nested_type", "no_path"])
def test_the_callback_prints_a_refusal_in_a_few_short_lines(monkeypatch, case):
    plugin = callback(monkeypatch)
    monkeypatch.setattr(plugin, "host_label", lambda result: "gpu01")
    plugin.v2_runner_on_failed(fake_result("ansible.builtin.validate_argument_spec", captured(case)))
    fatal = [m for m in plugin._display.shown if m.startswith("fatal:")]
    assert len(fatal) == 1
    text = fatal[0]
    assert text.startswith("fatal: [gpu01]: FAILED! => the variables of role mlinfra.mlhost.ml_host were refused")
    assert len(text.splitlines()) <= 5 and len(text.encode()) < 600, text
    assert "argument_spec_data" not in text and "Supported parameters include" not in text


def test_any_other_failure_goes_to_ansible_builtin_default(monkeypatch):
    plugin = callback(monkeypatch)
    seen = []
    monkeypatch.setattr(default.DefaultCallbackModule, "v2_runner_on_failed", lambda self, result, ignore_errors=False: seen.append(result))
    other = fake_result("mlinfra.mlhost.python_env", {"failed": True, "msg": "Nothing to install"})
    plugin.v2_runner_on_failed(other)
    # A validate_argument_spec task of the user's own whose result lacks the spec is theirs too.
    plain = fake_result("ansible.builtin.validate_argument_spec", {"failed": True, "msg": "boom"})
    plugin.v2_runner_on_failed(plain)
    assert seen == [other, plain] and plugin._display.shown == []


# Inputs shaped like a new user's typos, given as -e JSON to the real role (the implicit argument validation refuses
# them before the role's first task, so nothing of this machine is read or changed: check mode besides).
TYPOS = {
    "env-keys": ({"mlhost_python_envs": [{"path": "/opt/envs/train", "packages": ["torch"], "torch_cude": "cu124",
                                          "requirments": "/srv/requirements.txt"}]},
                 ["did you mean torch_cuda?", "did you mean requirements?"]),
    "conda-key": ({"mlhost_conda_envs": [{"name": "rapids", "spec": ["cudf"]}]}, ["unknown key spec - did you mean specs?"]),
    "types": ({"mlhost_python_envs": "/opt/envs/train", "mlhost_expected_gpus": "eight"},
              ["mlhost_python_envs has an item that is a str; it takes a list of dict",
               "mlhost_expected_gpus is a str; it takes an int"]),
}


def play(tmp_path, callback_name: str, extra: dict):
    import os
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[4]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "roles": ["mlinfra.mlhost.ml_host"]}]))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_STDOUT_CALLBACK=callback_name, ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(root / ".build" / "collections")))
    playbook = str(pathlib.Path(sys.executable).parent / "ansible-playbook")
    return subprocess.run([playbook, "-i", "localhost,", "-c", "local", "--check", "-e", json.dumps(extra), str(book)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_a_typo_given_to_the_real_role_is_refused_in_a_screenful(tmp_path, case):
    extra, expected = TYPOS[case]
    ours = play(tmp_path, "mlinfra.mlhost.default", extra)
    out = ours.stdout + ours.stderr
    assert ours.returncode == 2 and "ok=0    changed=0" in out, out[-3000:]
    for words in expected:
        assert words in out, out
    # The whole run's output: play banner, task banner, the refusal, the recap.
    assert len(out.splitlines()) <= 14 and len(out.encode()) <= 1200, (len(out.splitlines()), len(out.encode()), out)
    # Without the callback it is refused all the same, as ansible-core prints it: the whole spec (docs/ml_host.md).
    theirs = play(tmp_path, "ansible.builtin.default", extra)
    assert theirs.returncode == 2 and "argument_spec_data" in theirs.stdout
    assert len(theirs.stdout.encode()) > 10 * len(out.encode())
