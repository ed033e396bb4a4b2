# SPDX-License-Identifier: GPL-3.0-or-later
"""The reference docs are generated and whole, role READMEs exist and their examples hold, guides link the reference."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The collection's first release is 1.0.0 (issue 19, item 7): everything in it was added in that version.
GALAXY_VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
MODULES = sorted(p for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")


def module_docs(path: pathlib.Path) -> tuple[dict, dict]:
    namespace: dict = {}
    source = path.read_text(encoding="utf-8")
    for name in ("DOCUMENTATION", "RETURN"):
        start = source.index(f"{name} = r\"\"\"") + len(f"{name} = r\"\"\"")
        namespace[name] = yaml.safe_load(source[start:source.index('"""', start)])
    return namespace["DOCUMENTATION"], namespace["RETURN"]


REFERENCE = ROOT / "docs" / "reference"
FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py") if p.name != "__init__.py")
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
CALLBACKS = sorted(p.stem for p in (ROOT / "plugins" / "callback").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_module_reference_is_generated_and_names_every_option_and_fact(module):
    # docs/reference/ is antsibull-docs' rendering of the DOCUMENTATION blocks (the galaxy stage,
    # tests/galaxy/check.sh, fails when it is not what the code renders); this checks it is there and whole.
    page = REFERENCE / f"{module.stem}_module.rst"
    assert page.is_file(), f"docs/reference/{page.name} is missing: MLHOST_DOCS_UPDATE=1 bash scripts/test.sh galaxy"
    text = page.read_text(encoding="utf-8").replace("\\_", "_").replace("\\-", "-")
    documentation, returns = module_docs(module)
    assert text.startswith(".. Created with antsibull-docs"), page.name
    for option in documentation.get("options", {}):
        assert f"parameter-{option}" in text, f"option {option} is not on {page.name}"
    assert "Requirements\n------------" in text, f"no Requirements section on {page.name}"
    for requirement in documentation.get("requirements", []):
        plain = re.sub(r"\b[A-Z]\(([^)]*)\)", r"\1", requirement).split()[0]
        assert plain in text, f"requirement {requirement!r} is not on {page.name}"
    facts = returns.get("ansible_facts", {}).get("contains", {})
    for fact_root in facts.values():
        for key in fact_root.get("contains", {}):
            assert key in text, f"fact {key} is not on {page.name}"
    # The guide page (how it decides, what it costs) links to the reference instead of repeating it.
    guide = ROOT / "docs" / "modules" / f"{module.stem}.md"
    assert f"../reference/{page.name}" in guide.read_text(encoding="utf-8"), guide
    assert "## Options" not in guide.read_text(encoding="utf-8"), f"{guide.name} repeats the options; the reference has them"
    assert f"reference/{page.name}" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8"), module.stem


def test_every_filter_and_role_has_a_reference_page_and_the_index_links_them():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = [f"{name}_filter.rst" for name in FILTERS] + [f"{name}_role.rst" for name in ROLES]
    pages += [f"{name}_callback.rst" for name in CALLBACKS]
    for name in pages:
        assert (REFERENCE / name).is_file(), f"docs/reference/{name} is missing"
        assert f"reference/{name}" in index, f"docs/index.md does not link docs/reference/{name}"
    generated = {p.name for p in REFERENCE.glob("*.rst")} - {"index.rst"}
    assert generated == set(pages) | {f"{p.stem}_module.rst" for p in MODULES}, "docs/reference/ holds a page of content that is gone"


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_names_its_entry_points_and_its_example_uses_its_variables(role):
    readme = ROOT / "roles" / role / "README.md"
    assert readme.is_file(), f"roles/{role}/README.md is missing (galaxy-importer: 'No role readme found')"
    text = readme.read_text(encoding="utf-8")
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    entry_points = specs["argument_specs"]
    assert text.startswith(f"# mlinfra.mlhost.{role}\n"), readme
    assert f"ansible-doc -t role mlinfra.mlhost.{role}" in text
    for entry_point, spec in entry_points.items():
        assert f"`{entry_point}`" in text, f"entry point {entry_point} is not in {readme}"
        assert spec.get("version_added") == GALAXY_VERSION, f"{role} {entry_point}: version_added"
        assert spec.get("description"), f"{role} {entry_point}: no description (antsibull-docs renders an error page)"
    example = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert isinstance(example, list) and example, "the example is not a play list"

    def options(role_name):
        found = set()
        path = ROOT / "roles" / role_name / "meta" / "argument_specs.yml"
        for spec in yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"].values():
            found |= set(spec.get("options") or {})
        return found

    for play in example:
        used = [r["role"] for r in play.get("roles", [])] + [
            t["ansible.builtin.include_role"]["name"] for t in play.get("tasks", []) if "ansible.builtin.include_role" in t
        ]
        assert f"mlinfra.mlhost.{role}" in used, f"{role} README: a play that does not use the role"
        # ml_host includes the other roles and passes their variables through.
        names = ROLES if role == "ml_host" else [u.rsplit(".", 1)[1] for u in used]
        known = set().union(*(options(name) for name in names))
        for name in play.get("vars", {}):
            assert name in known, f"{role} README: the example sets {name}, which no role of its play documents"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_module_versions_and_requirements(module):
    documentation = module_docs(module)[0]
    assert documentation["version_added"] == GALAXY_VERSION, module.stem
    assert documentation.get("requirements"), f"{module.stem}: no requirements in DOCUMENTATION"
    assert all(isinstance(r, str) for r in documentation["requirements"]), documentation["requirements"]
    for see in documentation.get("seealso", []):
        link = see.get("link", "")
        prefix = "https://github.com/mlinfra/mlhost/blob/main/"
        if link.startswith(prefix):
            assert (ROOT / link[len(prefix):].split("#")[0]).exists(), f"{module.stem}: seealso link to a missing page {link}"


def test_compatibility_page_shows_every_table_row():
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat

    text = (ROOT / "docs" / "compatibility.md").read_text(encoding="utf-8")
    for release, driver in _compat.CUDA_RELEASES.items():
        assert f"| {release} | {driver} |" in text, release
    for release, tags in _compat.TORCH_CUDA_TAGS.items():
        assert f"| {release} | {', '.join(tags)} |" in text, release
    assert f"checked {_compat.TORCH_CUDA_TAGS_CHECKED}" in text and f"checked {_compat.TORCH_ARCH_FLOORS_CHECKED}" in text
    for torch, cuda, (major, minor) in _compat.TORCH_ARCH_FLOORS:
        assert f"| {torch} | {cuda} | {major}.{minor} (" in text, (torch, cuda)
    for arch, (major, minor) in _compat.ARCHITECTURE_MIN_CC.items():
        assert f"{arch.capitalize()} {major}.{minor}" in text, arch
    for branch, data in _compat.DRIVER_BRANCHES.items():
        assert f"| {branch} | {_compat.DESIGNATIONS[data['designation']]} | {data['eol']} |" in text, branch
