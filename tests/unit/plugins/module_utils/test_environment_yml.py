# SPDX-License-Identifier: GPL-3.0-or-later
"""environment.yml parsing: PyYAML and the fallback reader give the same answers."""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils._environment_yml import EnvFileError, parse_environment, read_environment

GOOD = """\
# kept in git
name: train   # trailing comment
channels:
  - conda-forge
  - "file:///srv/conda channel"
dependencies:
  - python=3.11
  - numpy >=1.26,<2  # pinned
  - 'scipy'
  - pip
  - pip:
    - requests==2.32.3
    - "six>=1.16 ; python_version >= '3'"
variables:
  OMP_NUM_THREADS: "1"
"""

FLOW = """\
name: x
channels: [conda-forge, bioconda]
dependencies:
- a
- pip:
  - b
prefix: /opt/envs/x
"""

BOTH = pytest.mark.parametrize("use_pyyaml", [True, False], ids=["pyyaml", "fallback"])


@BOTH
def test_good_file_with_pip_subsection(use_pyyaml):
    env = parse_environment(GOOD, "train.yml", use_pyyaml)
    assert env == {
        "name": "train",
        "prefix": None,
        "channels": ["conda-forge", "file:///srv/conda channel"],
        "conda": ["python=3.11", "numpy >=1.26,<2", "scipy", "pip"],
        "pip": ["requests==2.32.3", "six>=1.16 ; python_version >= '3'"],
        "unknown_keys": [],
    }


@BOTH
def test_flow_lists_unindented_sequences_and_pip_added(use_pyyaml):
    env = parse_environment(FLOW, "x.yml", use_pyyaml)
    assert env["channels"] == ["conda-forge", "bioconda"]
    assert env["conda"] == ["a", "pip"]  # pip is added when the pip subsection needs it
    assert env["pip"] == ["b"]
    assert env["prefix"] == "/opt/envs/x"


@BOTH
@pytest.mark.parametrize("text,expect", [
    ("dependencies: []\n", "has no dependencies list"),
    ("name: x\n", "has no dependencies list"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("name: x\ndependencies:\n  - a\n  - {foo: bar}\n", "may only be the 'pip:' subsection"),
    ("name: x\ndependencies:\n  - a\n  - pip: b\n", "pip subsection must be a list"),
    ("name: x\nchannels: conda-forge\ndependencies: [a]\n", "channels must be a list"),
    ("name: [x]\ndependencies: [a]\n", "name must be a string"),
    ("", "top level must be a mapping"),
])
def test_malformed_files(use_pyyaml, text, expect):
    with pytest.raises(EnvFileError, match=expect.replace("(", r"\(").replace("[", r"\[")):
        parse_environment(text, "bad.yml", use_pyyaml)


@pytest.mark.parametrize("text,expect", [
    ("name: x\ndependencies:\n  - a\n   - b\n", "unexpected indentation|unexpected content"),
    ("name: x\n\tdependencies: [a]\n", "tab"),
    ("name: &anchor x\ndependencies: [a]\n", "anchors"),
    ("name: 'x\ndependencies: [a]\n", "unterminated"),
    ("name: x\nname: y\ndependencies: [a]\n", "appears twice"),
])
def test_fallback_reader_refuses_what_it_cannot_read(text, expect):
    with pytest.raises(EnvFileError, match=expect):
        parse_environment(text, "bad.yml", use_pyyaml=False)


def test_pyyaml_syntax_error_names_the_file():
    with pytest.raises(EnvFileError, match="bad.yml is not valid YAML"):
        parse_environment("name: x\ndependencies: [a\n", "bad.yml", use_pyyaml=True)


def test_missing_file(tmp_path):
    with pytest.raises(EnvFileError, match="does not exist on the host"):
        read_environment(str(tmp_path / "nope.yml"))


def test_read_file(tmp_path):
    path = tmp_path / "environment.yml"
    path.write_text(GOOD, encoding="utf-8")
    assert read_environment(str(path))["name"] == "train"


@BOTH
def test_document_start_marker(use_pyyaml):
    env = parse_environment("---\nname: x\ndependencies: [a]\n", "x.yml", use_pyyaml)
    assert (env["name"], env["conda"]) == ("x", ["a"])


@pytest.mark.parametrize("pyyaml", [True, False], ids=["pyyaml", "fallback-reader"])
def test_a_byte_order_mark_is_not_content(tmp_path, monkeypatch, pyyaml):
    # Editors on Windows save environment.yml with one; the fallback reader took it as part of the first key.
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _environment_yml
    if not pyyaml:
        real = _environment_yml.importlib.import_module

        def no_yaml(name, *args):
            if name == "yaml":
                raise ImportError(name)
            return real(name, *args)

        monkeypatch.setattr(_environment_yml.importlib, "import_module", no_yaml)
    path = tmp_path / "environment.yml"
    path.write_bytes("\ufeffname: train\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n".encode("utf-8"))
    data = _environment_yml.read_environment(str(path))
    assert data["name"] == "train" and data["conda"] == ["python=3.11"] and data["unknown_keys"] == []
