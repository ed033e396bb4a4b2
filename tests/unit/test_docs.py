# SPDX-License-Identifier: GPL-3.0-or-later
"""Each module has a docs page naming every option and every top-level fact it returns."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = sorted(p for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")


def module_docs(path: pathlib.Path) -> tuple[dict, dict]:
    namespace: dict = {}
    source = path.read_text(encoding="utf-8")
    for name in ("DOCUMENTATION", "RETURN"):
        start = source.index(f"{name} = r\"\"\"") + len(f"{name} = r\"\"\"")
        namespace[name] = yaml.safe_load(source[start:source.index('"""', start)])
    return namespace["DOCUMENTATION"], namespace["RETURN"]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_module_has_a_docs_page_in_step_with_its_documentation(module):
    page = ROOT / "docs" / "modules" / f"{module.stem}.md"
    assert page.is_file(), f"docs/modules/{module.stem}.md is missing"
    text = page.read_text(encoding="utf-8")
    documentation, returns = module_docs(module)
    for option in documentation.get("options", {}):
        assert f"`{option}`" in text, f"option {option} is not on {page.name}"
    facts = returns.get("ansible_facts", {}).get("contains", {})
    for fact_root in facts.values():
        for key in fact_root.get("contains", {}):
            assert f"`{key}" in text, f"fact {key} is not on {page.name}"
    assert f"`{module.stem}`" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8") or module.stem in (
        ROOT / "docs" / "index.md"
    ).read_text(encoding="utf-8")


def test_compatibility_page_shows_every_table_row():
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat

    text = (ROOT / "docs" / "compatibility.md").read_text(encoding="utf-8")
    for release, driver in _compat.CUDA_RELEASES.items():
        assert f"| {release} | {driver} |" in text, release
    for release, tags in _compat.TORCH_CUDA_TAGS.items():
        assert f"| {release} | {', '.join(tags)} |" in text, release
    for branch, data in _compat.DRIVER_BRANCHES.items():
        assert f"| {branch} | {_compat.DESIGNATIONS[data['designation']]} | {data['eol']} |" in text, branch
