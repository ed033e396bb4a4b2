#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The ecosystem's own checkers on the built collection, as Galaxy and Automation Hub run them:
#   1. ansible-galaxy collection build;
#   2. galaxy-importer on the tarball (tests/galaxy/galaxy-importer.cfg: ansible-test off, ansible-lint
#      on), failing on an import error and on any warning or error it logs (lint findings included);
#      every plugin and role listed once, each with its description;
#   3. antsibull-docs lint-collection-docs --plugin-docs on the installed tarball;
#   4. the reference docs (docs/reference/) regenerated from the installed tarball with antsibull-docs
#      collection-plugins: the committed tree must be what the code renders (MLHOST_DOCS_UPDATE=1 rewrites it);
#   5. CHANGELOG.rst rendered from the fragments on a scratch copy (nothing consumed), compared with the
#      committed one (MLHOST_DOCS_UPDATE=1 rewrites it);
#   6. ansible-builder create on execution-environment.yml beside the tarball, the Containerfile's
#      collection install run offline on the context, and ansible-builder introspect on the result:
#      the collection's Python and system needs come once, from its meta/execution-environment.yml.
# Runs with the tools of .venv/galaxy (requirements/galaxy.txt) first on PATH (scripts/test.sh galaxy).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work="$REPO/.build/galaxy"
rm -rf "$work"
mkdir -p "$work/dist" "$work/installed" "$work/tmp"
cd "$REPO"
t0=$SECONDS
step() { echo "galaxy: $1 ($((SECONDS - t0)) s)"; }

ansible-galaxy collection build --force --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/mlinfra-mlhost-*.tar.gz)
version=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml)
step "built $(basename "$tarball")"

# 2. galaxy-importer. Its log goes to stdout with the --print-result JSON after it.
export GALAXY_IMPORTER_CONFIG="$REPO/tests/galaxy/galaxy-importer.cfg"
export GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$work/tmp"
(cd "$work" && python3 -m galaxy_importer.main --print-result "$tarball") >"$work/importer.out" 2>&1 || {
  cat "$work/importer.out" >&2
  echo "FAIL: galaxy-importer failed on $(basename "$tarball")" >&2
  exit 1
}
python3 - "$work/importer.out" "$REPO" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]).read_text()
repo = pathlib.Path(sys.argv[2])
start = out.index("\n{\n") + 1 if "\n{\n" in out else out.index("{\n")
log, result = out[:start], json.loads(out[start:])
bad = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR", "CRITICAL"))]
assert not bad, "galaxy-importer warned:\n" + "\n".join(bad)
assert "Importer processing completed successfully" in log, log[-2000:]
contents = [(c["content_type"], c["name"]) for c in result["contents"]]
dupes = sorted({c for c in contents if contents.count(c) > 1})
assert not dupes, f"listed more than once: {dupes}"
want = {("module", p.stem) for p in (repo / "plugins/modules").glob("*.py")}
want |= {("filter", p.stem) for p in (repo / "plugins/filter").glob("*.py")}
want |= {("role", p.name) for p in (repo / "roles").iterdir() if p.is_dir()}
documented = {c: d for c in result["contents"] for c, d in [((c["content_type"], c["name"]), c.get("description"))]}
missing = sorted(want - set(documented))
assert not missing, f"galaxy-importer does not list {missing}"
extra = sorted(c for c in set(documented) - want if c[0] in ("module", "filter", "role"))
assert not extra, f"galaxy-importer lists content that is not a plugin or role here: {extra}"
undocumented = sorted(c for c in want if not documented[c])
assert not undocumented, f"no description: {undocumented}"
print(f"galaxy-importer: {len(want)} plugins and roles, each once, each described; no warning")
PY
step "galaxy-importer passed"

# 3. antsibull-docs on the installed tarball (an ansible_collections tree).
ansible-galaxy collection install --offline --force -p "$work/installed" "$tarball" >/dev/null
installed="$work/installed/ansible_collections/mlinfra/mlhost"
antsibull-docs lint-collection-docs --plugin-docs "$installed" || {
  echo "FAIL: antsibull-docs lint-collection-docs --plugin-docs found errors (above)" >&2
  exit 1
}
step "antsibull-docs lint-collection-docs --plugin-docs passed"

# 4. The reference docs, rendered from the installed tarball.
bash "$REPO/tests/galaxy/reference.sh" "$work/installed" "$work/reference"
if [ "${MLHOST_DOCS_UPDATE:-}" = 1 ]; then
  rm -rf "$REPO/docs/reference"
  cp -r "$work/reference" "$REPO/docs/reference"
  step "docs/reference rewritten"
elif ! diff -ru "$REPO/docs/reference" "$work/reference" >"$work/reference.diff"; then
  head -60 "$work/reference.diff" >&2
  echo "FAIL: docs/reference is not what the code renders; rerun with MLHOST_DOCS_UPDATE=1 bash scripts/test.sh galaxy and commit it" >&2
  exit 1
fi
step "docs/reference is what the code renders ($(find "$work/reference" -type f | wc -l) files)"

# 5. CHANGELOG.rst, rendered by antsibull-changelog from the fragments without consuming them: the
#    collection has no recorded release yet (changelogs/changelog.yaml: releases: {}), and `generate`
#    renders recorded releases only, so `antsibull-changelog release` runs on a scratch copy of the
#    installed tarball; the checkout's fragments and changelog.yaml stay as they are. The committed
#    CHANGELOG.rst must be that rendering, and every module, filter and role must be new in it.
#    The copy lies outside this git checkout: with changelogs/config.yaml's vcs: auto, antsibull-changelog
#    lists a collection inside a git work tree with git, which ignores .build/.
scratch_root=$(mktemp -d)
trap 'rm -rf "$scratch_root"' EXIT
scratch="$scratch_root/ansible_collections/mlinfra/mlhost"
mkdir -p "$(dirname "$scratch")"
cp -r "$installed" "$scratch"
cp galaxy.yml "$scratch/"
(cd "$scratch" && ANSIBLE_COLLECTIONS_PATH="$scratch_root" antsibull-changelog release --version "$version" --date 2000-01-01 >/dev/null)
python3 - "$scratch" "$REPO" "$version" <<'PY'
import pathlib, sys, yaml
scratch, repo, version = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
release = yaml.safe_load((scratch / "changelogs/changelog.yaml").read_text())["releases"][version]
new = {("module", m["name"]) for m in release.get("modules", [])}
new |= {(t, p["name"]) for t, ps in release.get("plugins", {}).items() for p in ps}
new |= {(t, o["name"]) for t, os_ in release.get("objects", {}).items() for o in os_}
want = {("module", p.stem) for p in (repo / "plugins/modules").glob("*.py")}
want |= {("filter", p.stem) for p in (repo / "plugins/filter").glob("*.py")}
want |= {("role", p.name) for p in (repo / "roles").iterdir() if p.is_dir()}
assert not want - new, f"not new in {version} (version_added wrong?): {sorted(want - new)}"
print(f"changelog: {len(want)} modules, filters and roles new in {version}")
PY
if [ "${MLHOST_DOCS_UPDATE:-}" = 1 ]; then
  cp "$scratch/CHANGELOG.rst" "$REPO/CHANGELOG.rst"
  step "CHANGELOG.rst rewritten"
elif ! diff -u "$REPO/CHANGELOG.rst" "$scratch/CHANGELOG.rst" >"$work/changelog.diff"; then
  head -40 "$work/changelog.diff" >&2
  echo "FAIL: CHANGELOG.rst is not what the fragments render; rerun with MLHOST_DOCS_UPDATE=1 bash scripts/test.sh galaxy and commit it" >&2
  exit 1
fi
step "CHANGELOG.rst is what the fragments render"

# 6. The execution environment from the tarball.
ee="$work/ee"
mkdir -p "$ee"
cp execution-environment.yml "$tarball" "$ee/"
grep -q "mlinfra-mlhost-$version.tar.gz" execution-environment.yml || {
  echo "FAIL: execution-environment.yml does not name mlinfra-mlhost-$version.tar.gz (galaxy.yml's version)" >&2
  exit 1
}
(cd "$ee" && ansible-builder create --file execution-environment.yml --context context --output-filename Containerfile >/dev/null)
[ -f "$ee/context/_build/collections/mlinfra-mlhost-$version.tar.gz" ] || { echo "FAIL: the tarball is not in the EE context" >&2; exit 1; }
# What the Containerfile's galaxy stage runs (in /build, from requirements.yml), offline.
# --force and no ANSIBLE_COLLECTIONS_PATH: the suite's own path holds this checkout as mlinfra.mlhost 1.0.0,
# which ansible-galaxy would otherwise take as already installed.
(cd "$ee/context/_build" && env -u ANSIBLE_COLLECTIONS_PATH ansible-galaxy collection install --offline --force \
  -r requirements.yml --collections-path "$ee/collections" >/dev/null 2>&1)
[ -f "$ee/collections/ansible_collections/mlinfra/mlhost/MANIFEST.json" ] || {
  echo "FAIL: the EE context's requirements.yml did not install the collection from the tarball" >&2
  exit 1
}
ansible-builder introspect --sanitize "$ee/collections" >"$ee/introspect.txt"
python3 - "$ee" "$REPO" <<'PY'
import pathlib, re, sys, yaml
ee, repo = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
containerfile = (ee / "context/Containerfile").read_text()
assert "quay.io/centos/centos:stream9" in containerfile, "base image missing from the Containerfile"
core_pin = re.search(r"^ansible-core==\S+", (repo / "requirements/site.txt").read_text(), re.M).group(0)
assert core_pin in containerfile, f"{core_pin} (requirements/site.txt) is not what the EE installs"
spec = yaml.safe_load((repo / "execution-environment.yml").read_text())
deps = spec["dependencies"]
assert "python" not in deps and "system" not in deps, "the EE file names the collection's needs; meta/execution-environment.yml does"
assert [c.get("type") for c in deps["galaxy"]["collections"]] == ["file"], deps["galaxy"]
found = yaml.safe_load((ee / "introspect.txt").read_text())
python = [l.split("#")[0].strip() for l in found.get("python", [])]
system = [l.split("#")[0].strip() for l in found.get("system", [])]
want_py = [l for l in (repo / "meta/ee-requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
want_sys = [l for l in (repo / "meta/ee-bindep.txt").read_text().splitlines() if l and not l.startswith("#")]
for line in want_py:
    assert python.count(line) == 1, f"{line}: {python.count(line)} times in the EE's Python needs {python}"
for line in want_sys:
    assert system.count(line) == 1, f"{line}: {system.count(line)} times in the EE's system needs {system}"
assert not any(re.match(r"(rsync|tar)\b", l) for l in system), system
print(f"execution environment: {core_pin}, the collection from the tarball, {len(python)} Python and {len(system)} system needs, each once")
PY
step "execution environment checked"
echo "galaxy: ok"
