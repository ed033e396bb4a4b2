#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The whole test suite, from nothing: a pinned venv, unit tests, ansible-test
# sanity, ansible-lint and antsibull-changelog lint, the built collection
# (build, install, ansible-doc, run), the ecosystem's checkers on the tarball
# (galaxy-importer, antsibull-docs, ansible-builder: tests/galaxy/check.sh, in
# their own pinned venv), then every molecule scenario on real Debian 12 and 13
# containers (dockerd and the images are set up by tests/testbed/testbed.sh when
# absent), the ansible-core 2.21 line (Python 3.12: unit tests and the host_facts
# scenario), then the benchmarks' smoke run (bench/run.sh --smoke: every
# benchmark once, so the harness keeps working).
#
#   bash scripts/test.sh                  every stage
#   bash scripts/test.sh unit lint        some stages (unit sanity lint package galaxy molecule core221 bench)
#   MOLECULE_SCENARIOS="host_facts" bash scripts/test.sh molecule
#   MLHOST_CORE221_SCENARIOS="host_facts python" bash scripts/test.sh core221
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -e
make_venv test requirements/test.txt
link_collection
set +e
VENV="$REPO/.venv/test"
export PATH="$VENV/bin:$PATH" VENV
export MLHOST_COLLECTIONS_PATH="$ANSIBLE_COLLECTIONS_PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
cd "$REPO"

stages=("$@")
all_stages=(unit sanity lint package galaxy molecule core221 bench)
[ ${#stages[@]} -gt 0 ] || stages=("${all_stages[@]}")
passed=() failed=()

# The fleet report's page is checked in a real browser (tests/unit/plugins/filter/test_fleet_report_browser.py):
# Debian's chromium, installed here when missing and the suite runs as root; then the test may not skip.
stage_unit() {
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium from Debian for the fleet report's browser test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >/dev/null || return 1
  fi
  if command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    MLHOST_BROWSER_REQUIRED=1 pytest
  else
    pytest
  fi
}
stage_sanity() {
  # ansible-test's shellcheck test skips itself without the program.
  if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing shellcheck from Debian for ansible-test's shellcheck test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq shellcheck >/dev/null || return 1
  fi
  bash scripts/sanity.sh
}
stage_lint() { ansible-lint && antsibull-changelog lint; }
stage_package() { bash tests/package/check.sh; }

# galaxy-importer (Galaxy's settings, ansible-lint on, ansible-test off), antsibull-docs lint and the
# generated reference, ansible-builder create: pinned in requirements/galaxy.txt, their own venv.
stage_galaxy() {
  make_venv galaxy requirements/galaxy.txt || return 1
  PATH="$REPO/.venv/galaxy/bin:$PATH" bash tests/galaxy/check.sh
}

# The second ansible-core line: 2.21 (the newest; it needs Python 3.12 or newer) from
# requirements/core221.txt in .venv/core221: the unit tests and the molecule scenarios of
# MLHOST_CORE221_SCENARIOS (default host_facts, the shortest).
stage_core221() {
  local python v="$REPO/.venv/core221" rc=0 s t0
  if ! python=$(find_python312); then
    log "core221: no Python 3.12 or newer here (python3.12 or python3.13 on PATH, or \${PYENV_ROOT:-~/.pyenv}/versions/3.12*);"
    log "core221: install one (Debian 13's python3, or pyenv install 3.12) or set MLHOST_PYTHON312=/path/to/python3.12"
    return 1
  fi
  make_venv core221 requirements/core221.txt "$python" || return 1
  # Read whole, then cut: "ansible --version | head -1" let head close the pipe while ansible still wrote, and
  # ansible died of the broken pipe (seen once in CI under load; with pipefail the check then failed).
  local version
  version=$("$v/bin/ansible" --version) || { log "core221: $v/bin/ansible --version failed"; return 1; }
  version=${version%%$'\n'*}
  log "core221: $version on $("$v/bin/python" --version)"
  [[ $version == *"core 2.21."* ]] || { log "core221: .venv/core221 is not ansible-core 2.21 ($version)"; return 1; }
  PATH="$v/bin:$PATH" "$v/bin/pytest" -p no:cacheprovider || return 1
  bash tests/testbed/testbed.sh all || return 1
  for s in ${MLHOST_CORE221_SCENARIOS:-host_facts}; do
    log "core221: molecule scenario $s"
    t0=$SECONDS
    if PATH="$v/bin:$PATH" "$v/bin/molecule" test -s "$s"; then
      log "core221: molecule scenario $s passed in $((SECONDS - t0)) s"
    else
      log "core221: molecule scenario $s FAILED after $((SECONDS - t0)) s"
      rc=1
    fi
  done
  return $rc
}
stage_molecule() {
  bash tests/testbed/testbed.sh all || return 1
  local scenarios=${MOLECULE_SCENARIOS:-} rc=0 s f
  if [ -z "$scenarios" ]; then
    for f in molecule/*/molecule.yml; do
      f=${f%/molecule.yml}
      scenarios+="${f#molecule/} "
    done
  fi
  for s in $scenarios; do
    log "molecule scenario $s"
    local t0=$SECONDS
    if molecule test -s "$s"; then
      log "molecule scenario $s passed in $((SECONDS - t0)) s"
    else
      log "molecule scenario $s FAILED after $((SECONDS - t0)) s"
      rc=1
    fi
  done
  return $rc
}

# The benchmarks once each (figures of a smoke run mean nothing; docs/benchmarks.md has the full run's).
stage_bench() { bash bench/run.sh --smoke; }

for stage in "${stages[@]}"; do
  case "$stage" in
    unit | sanity | lint | package | galaxy | molecule | core221 | bench) ;;
    *) log "unknown stage '$stage': choose from ${all_stages[*]}"; exit 2 ;;
  esac
  log "stage $stage"
  t0=$SECONDS
  if "stage_$stage"; then
    passed+=("$stage ($((SECONDS - t0)) s)")
  else
    failed+=("$stage ($((SECONDS - t0)) s)")
  fi
done

log "passed: ${passed[*]:-none}"
log "failed: ${failed[*]:-none}"
echo "stages: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
