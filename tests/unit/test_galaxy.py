# SPDX-License-Identifier: GPL-3.0-or-later
"""What a collection user and Galaxy read: requirements.yml, build_ignore, requires_ansible, the EE file."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[2]
# A task's module key (`- community.docker.docker_container:`, `  ansible.posix.authorized_key:`) or a
# connection plugin named as a value (`connection: community.docker.docker`).
TASK_KEY = re.compile(r"^\s*(?:- )?([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:\s*$", re.M)
CONNECTION = re.compile(r"^\s*(?:ansible_)?connection:\s*[\"']?([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*", re.M)
NOT_COLLECTIONS = {"ansible.builtin", "ansible.legacy", "mlinfra.mlhost"}


def load(path):
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def used_collections():
    used = set()
    for top in ("molecule", ".config", "bench", "playbooks", "roles"):
        for path in (ROOT / top).rglob("*.yml"):
            text = path.read_text(encoding="utf-8")
            for match in [*TASK_KEY.finditer(text), *CONNECTION.finditer(text)]:
                name = f"{match.group(1)}.{match.group(2)}"
                if name not in NOT_COLLECTIONS:
                    used.add(name)
    if load(".config/molecule/config.yml")["driver"]["name"] == "docker":
        used.add("community.docker")  # molecule-plugins' docker driver runs community.docker's modules
    return used


def test_requirements_yml_names_every_collection_the_tests_use_with_a_version():
    named = {c["name"]: c for c in load("requirements.yml")["collections"]}
    used = used_collections()
    assert "ansible.posix" in used and "community.docker" in used, used  # the scan finds what is known to be there
    assert used <= set(named), f"used but not in requirements.yml: {sorted(used - set(named))}"
    for name, entry in named.items():
        assert SpecifierSet(str(entry["version"])), name
    assert load("galaxy.yml")["dependencies"] == {}, "the collection itself needs no other collection"


def test_requirements_yml_versions_cover_what_each_test_venv_carries():
    named = {c["name"]: SpecifierSet(str(c["version"])) for c in load("requirements.yml")["collections"]}
    text = (ROOT / "requirements.yml").read_text(encoding="utf-8")
    # The versions each pinned ansible package carries, as the file's comment states them.
    for name, version in re.findall(r"(community\.docker|ansible\.posix) ([0-9]+\.[0-9]+\.[0-9]+)", text):
        assert Version(version) in named[name], f"{name} {version} outside {named[name]}"


def test_requires_ansible_is_the_range_the_suite_tests():
    spec = SpecifierSet(load("meta/runtime.yml")["requires_ansible"])
    for requirements in ("requirements/test.txt", "requirements/site.txt", "requirements/core221.txt"):
        pin = re.search(r"^ansible-core==(\S+)$", (ROOT / requirements).read_text(encoding="utf-8"), re.M).group(1)
        assert Version(pin) in spec, f"{requirements}: ansible-core {pin} not in requires_ansible {spec}"
    assert Version("2.18.0") not in spec and Version("2.22.0") not in spec, f"{spec} claims an untested line"


@pytest.mark.parametrize("pattern", [line.strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()])
def test_build_ignore_covers_what_git_ignores(pattern):
    # What a used checkout leaves behind is git-ignored; none of it may ship in the tarball.
    ignore = load("galaxy.yml")["build_ignore"]
    parts = pattern.split("/")
    covered = any("/".join(parts[:n]) in ignore for n in range(1, len(parts) + 1))
    assert covered, f"{pattern} is git-ignored but neither it nor a folder above it is in galaxy.yml build_ignore"


def test_execution_environment_takes_the_tarball_and_names_each_need_once():
    ee = load("execution-environment.yml")
    version = load("galaxy.yml")["version"]
    deps = ee["dependencies"]
    assert deps["galaxy"]["collections"] == [{"name": f"collections/mlinfra-mlhost-{version}.tar.gz", "type": "file"}]
    assert ee["additional_build_files"] == [{"src": f"mlinfra-mlhost-{version}.tar.gz", "dest": "collections"}]
    assert "python" not in deps and "system" not in deps, "meta/execution-environment.yml names the collection's needs"
    meta = load("meta/execution-environment.yml")["dependencies"]
    assert meta == {"python": "meta/ee-requirements.txt", "system": "meta/ee-bindep.txt"}
    bindep = [l.split()[0] for l in (ROOT / "meta/ee-bindep.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert "rsync" not in bindep and "tar" not in bindep, bindep
    pin = re.search(r"^ansible-core==\S+$", (ROOT / "requirements/site.txt").read_text(), re.M).group(0)
    assert deps["ansible_core"]["package_pip"] == pin
