# SPDX-License-Identifier: GPL-3.0-or-later
"""The secrets scenario's judge (molecule/secrets/check_log.py) and the data-loss cases of bad_input.

check_log.py is what makes the secrets scenario fail: these tests feed it logs that
hold a token, that miss a case or a host, and a clean one, so that the scenario
cannot pass for want of a working grep. The ownership cases file is checked for
shape (ids, expectations) as tests/unit/test_bad_input.py checks cases.yml.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "molecule" / "secrets"
BAD_INPUT = ROOT / "molecule" / "bad_input"
HOSTS = ["h12", "h13"]


def tokens() -> dict[str, str]:
    return yaml.safe_load((SCENARIO / "vars" / "tokens.yml").read_text(encoding="utf-8"))["mlhost_secrets_tokens"]


def cases() -> list[str]:
    import re

    text = (SCENARIO / "run_at_vvv.yml").read_text(encoding="utf-8")
    return list(dict.fromkeys(re.findall(r'name: "Secrets case ([a-z0-9-]+):', text)))


def clean_log() -> str:
    parts = []
    for case in cases():
        parts.append(f"TASK [Secrets case {case}: something] ****\n")
        if case == "fleet-report":
            parts.append("included: /x/fleet_report.yml for localhost\n")
        elif case.startswith("role-"):
            parts.append("included: mlinfra.mlhost.ml_host for h12, h13\n")
        else:
            parts += ["fatal: [h12]: FAILED! => {\"msg\": \"https://***@127.0.0.1:2391/simple\"}\n", "ok: [h13]\n"]
    parts.append("PLAY RECAP ****\nh12 : ok=3 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=20\n")
    return "".join(parts)


def judge(tmp_path: pathlib.Path, log: str, report: dict[str, str] | None = None) -> dict:
    (tmp_path / "run.log").write_text(log, encoding="utf-8")
    (tmp_path / "report").mkdir(exist_ok=True)
    for name, text in (report or {}).items():
        (tmp_path / "report" / name).write_text(text, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(SCENARIO / "check_log.py"), str(tmp_path / "run.log"), str(tmp_path / "report"),
         str(SCENARIO / "vars" / "tokens.yml"), str(SCENARIO / "run_at_vvv.yml"), *HOSTS],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_tokens_are_distinct_and_share_the_prefix():
    values = list(tokens().values())
    assert len(values) >= 40 and len(set(values)) == len(values)
    assert all(v.startswith("mlhsek") for v in values)
    # No token is a part of another: a hit is counted for the right one.
    assert not [a for a in values for b in values if a != b and a in b]


def test_every_token_is_used_by_the_run_or_its_input_files():
    used = (SCENARIO / "run_at_vvv.yml").read_text() + (SCENARIO / "prepare.yml").read_text()
    assert [name for name in tokens() if f"t.{name} " not in used and f"t.{name}}}" not in used] == []


def test_a_clean_log_passes(tmp_path):
    result = judge(tmp_path, clean_log())
    assert result["hits"] == 0 and result["not_run"] == [] and result["cases"] == len(cases()) >= 30
    assert result["masked"] > 0


def test_a_token_in_the_log_or_the_report_is_found_without_printing_it(tmp_path):
    t = tokens()
    log = clean_log() + f"ok: [h12] => {{\"url\": \"https://u:{t['py_index']}@127.0.0.1:2391/simple\"}}\n"
    result = judge(tmp_path, log, {"fleet-report.md": f"proxy http://u:{t['role_proxy']}@127.0.0.1:2393 and mlhsek-unknown\n"})
    assert result["hits"] == 2
    assert result["hit_tokens"] == sorted(["py_index", "role_proxy", "unlisted"])
    printed = json.dumps(result)
    assert not [v for v in t.values() if v in printed] and "mlhsek" not in printed


def test_a_case_that_did_not_run_on_every_host_is_named(tmp_path):
    header = "TASK [Secrets case pyenv-index-url: something] ****\n"
    log = clean_log().replace(header + "fatal: [h12]", header + "fatal: [h99]")
    log = log.replace("TASK [Secrets case build-proxy:", "TASK [Something else:")
    result = judge(tmp_path, log)
    assert {c["case"] for c in result["not_run"]} == {"pyenv-index-url", "build-proxy"}


def test_ownership_cases_have_their_expectations():
    own = yaml.safe_load((BAD_INPUT / "vars" / "ownership_cases.yml").read_text(encoding="utf-8"))["cases"]
    base = yaml.safe_load((BAD_INPUT / "vars" / "cases.yml").read_text(encoding="utf-8"))["cases"]
    ids = [c["id"] for c in base + own]
    assert len(set(ids)) == len(ids) and all(c["id"].startswith("own-") for c in own)
    assert len(own) >= 30
    for case in own:
        assert case["about"] and "module" in case and "role" not in case and not case.get("check"), case
        if case.get("succeed"):
            assert case["gone"] and case["gone"] == case["args"].get("path", case["args"].get("prefix")), case
        else:
            option, value = case["expect_all"]
            # The option, and the path it refuses (or the env that path is inside of).
            assert option in case["args"] and str(case["args"][option]).startswith(value), case
    assert {c["module"] for c in own} == {"python_env", "conda_env", "miniforge"}
    assert sum(1 for c in own if c.get("succeed")) >= 3
    assert {c["args"].get("lock_file") for c in own} >= {"/etc/passwd", "/srv/data/notes.txt"}
