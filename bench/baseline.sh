#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The plain-script baseline of bench/mlbench.py: what a setup guide has a person
# paste on a fresh Debian 12 host, doing the same work as the benchmark's ml_host
# profile (the same packages, the same venv, the same pinned requirements from
# the same wheelhouse). Run on the host as root over SSH:
#
#   ssh root@HOST bash -s -- REQUIREMENT... < bench/baseline.sh
#
# Like ml_host's build_tools it installs without recommends, so both install
# the same package set (a guide's plain `apt-get install -y` would add
# recommends and take longer: the comparison would flatter ml_host).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# The harness times the steps from these lines (three `date` calls: no measurable cost).
mark() { printf 'mlbench-mark %s %s\n' "$1" "$(date +%s.%N)"; }
mark apt
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake git curl wget ca-certificates python3-dev python3-venv pkgconf >/dev/null
mark env
python3 -m venv /opt/mlhost/venvs/default
/opt/mlhost/venvs/default/bin/pip install -q --disable-pip-version-check \
  --no-index --find-links /srv/mlbench-wheels "$@"
mark check
# The check a guide ends with.
/opt/mlhost/venvs/default/bin/python -c 'import numpy; print("numpy", numpy.__version__)'
