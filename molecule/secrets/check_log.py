# SPDX-License-Identifier: GPL-3.0-or-later
"""Judge the secrets scenario's run: no token anywhere, every case ran on every host.

    check_log.py LOG REPORT_DIR TOKENS_YML PLAYBOOK HOST...

Prints one JSON object: the tokens and cases counted, every hit (token, file, line
number, the line with the token itself replaced by <TOKEN:name> so that this output
does not print it either), the cases whose task header is missing or that did not
report on every host, the failed/ignored counts of the recap, and how many masked
URLs (``***@`` or ansible's ``********``) the log holds (the secrets did travel).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

import yaml

PREFIX = "mlhsek"  # every token starts with it: a hit on it alone is a token not listed


def main() -> int:
    log, report_dir, tokens_yml, playbook, *hosts = sys.argv[1:]
    tokens = yaml.safe_load(pathlib.Path(tokens_yml).read_text(encoding="utf-8"))["mlhost_secrets_tokens"]
    assert all(value.startswith(PREFIX) for value in tokens.values()) and len(set(tokens.values())) == len(tokens)
    files = [pathlib.Path(log)] + sorted(p for p in pathlib.Path(report_dir).rglob("*") if p.is_file())
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if PREFIX not in line:
                continue
            shown = line
            names = []
            for name, value in sorted(tokens.items(), key=lambda kv: -len(kv[1])):
                if value in shown:
                    names.append(name)
                    shown = shown.replace(value, f"<TOKEN:{name}>")
            if PREFIX in shown:
                names.append("unlisted")
                shown = shown.replace(PREFIX, "<TOKEN:unlisted>")
            hits.append({"file": str(path), "line": number, "tokens": names, "text": shown[:400]})
    text = pathlib.Path(log).read_text(encoding="utf-8", errors="replace")
    cases = list(dict.fromkeys(re.findall(r'name: "Secrets case ([a-z0-9-]+):', pathlib.Path(playbook).read_text(encoding="utf-8"))))
    # The log in sections, one per task: "TASK [name] ****".
    sections = re.split(r"^(?=TASK \[)", text, flags=re.M)
    not_run = []
    for case in cases:
        mine = [s for s in sections if s.startswith(f"TASK [Secrets case {case}:")]
        expected = ["localhost"] if case == "fleet-report" else hosts
        reported = {h for h in expected if any(
            re.search(rf"^(ok|changed|fatal|failed|skipping): \[{re.escape(h)}\]", s, re.M)
            or re.search(rf"^included: .* for (.*, )?{re.escape(h)}(,|$)", s, re.M) for s in mine)}
        if not mine or reported != set(expected):
            not_run.append({"case": case, "tasks": len(mine), "missing": sorted(set(expected) - reported)})
    recap = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
             for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", text, re.M)}
    print(json.dumps({
        "tokens": len(tokens),
        "cases": len(cases),
        "files": [str(f) for f in files],
        "log_lines": text.count("\n"),
        "hits": len(hits),
        "hit_tokens": sorted({n for h in hits for n in h["tokens"]}),
        "hit_lines": hits[:60],
        "not_run": not_run,
        "recap": recap,
        "masked": len(re.findall(r"\*\*\*@|\*{8}", text)),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
