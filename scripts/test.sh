#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The whole test suite, from nothing: a pinned venv, unit tests, ansible-test
# sanity, ansible-lint and antsibull-changelog lint, the built collection
# (build, install, ansible-doc, run), then every molecule
# scenario on real Debian 12 and 13 containers (dockerd and the images are
# set up by tests/testbed/testbed.sh when absent), then the benchmarks' smoke
# run (bench/run.sh --smoke: every benchmark once, so the harness keeps working).
#
#   bash scripts/test.sh                  every stage
#   bash scripts/test.sh unit lint        some stages (unit sanity lint package molecule bench)
#   MOLECULE_SCENARIOS="host_facts" bash scripts/test.sh molecule
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
[ ${#stages[@]} -gt 0 ] || stages=(unit sanity lint package molecule bench)
passed=() failed=()

stage_unit() { pytest; }
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
    unit | sanity | lint | package | molecule | bench) ;;
    *) log "unknown stage '$stage': choose from unit sanity lint package molecule bench"; exit 2 ;;
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
