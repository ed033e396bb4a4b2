# SPDX-License-Identifier: GPL-3.0-or-later
"""The env and conda entries of the role argument specs document exactly the modules' options (issue 18, item 1).

Each entry of mlhost_python_envs is M(mlinfra.mlhost.python_env)'s arguments as it is, each entry of mlhost_conda_envs
M(mlinfra.mlhost.conda_env)'s: the roles' specs list those options as the entries' sub-options, so ansible-doc shows
them and the role's argument validation refuses a misspelt key before anything runs. This test derives the sub-options
from the module (ARGUMENT_SPEC for name, type, elements, choices, default, required, no_log; DOCUMENTATION's first
description item) and compares them with every role spec that documents them, so the two cannot drift.

``python tests/unit/test_role_suboptions.py python_env mlhost_python_envs`` prints the block to paste.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

# (role, entry point, variable) -> module whose options are the entries' keys.
DOCUMENTED = [
    ("ml_host", "main", "mlhost_python_envs", "python_env"),
    ("ml_host", "main", "mlhost_conda_envs", "conda_env"),
    ("python_env", "main", "mlhost_python_envs", "python_env"),
    ("miniforge", "main", "mlhost_conda_envs", "conda_env"),
]


def _doc_block(source: str, name: str = "DOCUMENTATION") -> dict:
    start = source.index(f'{name} = r"""') + len(f'{name} = r"""')
    return yaml.safe_load(source[start:source.index('"""', start)])


def module_option_docs(module: str) -> dict:
    """The module's documented options, its doc fragments' included (as ansible-doc merges them)."""
    documentation = _doc_block((ROOT / "plugins" / "modules" / f"{module}.py").read_text(encoding="utf-8"))
    options = dict(documentation.get("options") or {})
    for fragment in documentation.get("extends_documentation_fragment", []):
        name = fragment.rsplit(".", 1)[1]
        path = ROOT / "plugins" / "doc_fragments" / f"{name}.py"
        options.update(_doc_block(path.read_text(encoding="utf-8")).get("options") or {})
    return options


def expected_suboptions(module: str, variable: str) -> dict:
    spec = importlib.import_module(f"ansible_collections.mlinfra.mlhost.plugins.modules.{module}").ARGUMENT_SPEC
    docs = module_option_docs(module)
    expected = {}
    for name in sorted(spec):
        arg = spec[name]
        description = docs[name]["description"]
        first = description[0] if isinstance(description, list) else description
        # O(x) in the module's text is a sibling option; in the role's page it is O(variable[].x).
        first = re.sub(r"O\(([a-z_]+)\)", lambda m: f"O({variable}[].{m.group(1)})" if m.group(1) in spec else f"C({m.group(1)})", first)
        entry = {"description": first, "type": arg["type"]}
        for key in ("elements", "choices", "default", "no_log"):
            if key in arg:
                entry[key] = arg[key]
        if arg.get("required"):
            entry["required"] = True
        expected[name] = entry
    return expected


@pytest.mark.parametrize("role,entry_point,variable,module", DOCUMENTED, ids=str)
def test_role_suboptions_are_the_modules_options(role, entry_point, variable, module):
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    option = specs["argument_specs"][entry_point]["options"][variable]
    assert option["type"] == "list" and option["elements"] == "dict", option
    documented = option.get("options")
    assert documented, f"{role} {variable}: no sub-options (ansible-doc shows 'elements: dict' only)"
    expected = expected_suboptions(module, variable)
    assert sorted(documented) == sorted(expected), f"{role} {variable}: sub-options differ from {module}'s options"
    for name, entry in expected.items():
        assert documented[name] == entry, f"{role} {variable}.{name}: differs from {module}'s option (regenerate it)"


def test_every_module_option_is_documented_with_a_type_and_description():
    # The derivation needs both: a module option without DOCUMENTATION would be a KeyError above, not a silent gap.
    for module in ("python_env", "conda_env"):
        for name, entry in expected_suboptions(module, "x").items():
            assert entry["description"] and entry["type"], (module, name)


if __name__ == "__main__":  # pragma: no cover - prints the block to paste into an argument_specs.yml
    class Indented(yaml.SafeDumper):  # lists indented under their key (yamllint's indentation rule)
        def increase_indent(self, flow=False, indentless=False):
            return super().increase_indent(flow, False)

    block = yaml.dump({"options": expected_suboptions(sys.argv[1], sys.argv[2])}, Dumper=Indented, sort_keys=False, width=118)
    print("\n".join(("  " * int(sys.argv[3]) + line) if line else line for line in block.splitlines()))
