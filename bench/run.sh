#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The benchmarks of docs/benchmarks.md, from nothing (as root: it starts dockerd and
# containers through tests/testbed/testbed.sh):
#
#   bash bench/run.sh            the full run (3 rounds; fleets of 1, 2, 4 and 8 hosts)
#   bash bench/run.sh --smoke    one round of every part but fleet32 and local, fleets of 1 and 2 (what CI runs)
#   bash bench/run.sh --only first,rerun --rounds 5     some parts (first rerun fleet fleet32 facts env local)
#   bash bench/run.sh --only local --reruns 5  the main job over the local connection, inside a bench host
#
# Results: bench/results/<UTC time>/ (results.json, summary.md, fleet.png, every run's log).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# The controller's tools: ssh for the hosts, gpg to sign the local mirror, dpkg-scanpackages to index it.
missing=()
for pair in ssh:openssh-client ssh-keygen:openssh-client gpg:gnupg dpkg-scanpackages:dpkg-dev; do
  if ! command -v "${pair%%:*}" >/dev/null 2>&1 && [[ " ${missing[*]} " != *" ${pair#*:} "* ]]; then
    missing+=("${pair#*:}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
make_venv test requirements/test.txt
make_venv bench requirements/bench.txt
link_collection
export VENV="$REPO/.venv/test"
exec "$VENV/bin/python" "$REPO/bench/mlbench.py" "$@"
