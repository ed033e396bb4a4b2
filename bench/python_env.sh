#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: python_env building the same fresh environment from a local
# wheelhouse with the uv backend and with the pip backend, through the module
# (ansible ad hoc, local connection), interleaved, ROUNDS times each.
# uv is measured twice: with its cache warm (the steady state on a host) and
# with an empty cache every round (a first build). Then "change one pin" on an
# existing uv env of the same 20 packages: the unchanged rerun, the check-mode
# plan of a request with one pin changed (uv resolves the whole request), and
# the real update to that pin and back, interleaved.
#
#   bash bench/python_env.sh [ROUNDS]      (default 5; run as root on a scratch machine)
#
# Prints one line per run and a summary with medians, min, max and the ratios.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${1:-5}
# shellcheck source=/dev/null
source "$REPO/scripts/lib.sh"
make_venv test requirements/test.txt
link_collection
work=$(mktemp -d /var/tmp/mlhost-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
REQS=(requests==2.32.3 urllib3==2.2.3 idna==3.10 certifi==2024.8.30 charset-normalizer==3.4.0 attrs==24.2.0
  six==1.17.0 packaging==24.2 PyYAML==6.0.2 Jinja2==3.1.4 MarkupSafe==3.0.2 click==8.1.7 rich==13.9.4
  Pygments==2.18.0 markdown-it-py==3.0.0 mdurl==0.1.2 tomli==2.2.1 python-dateutil==2.9.0.post0
  pytz==2024.2 numpy==2.1.3)
python3 -m venv "$work/dl"
for set in "${REQS[*]}" "packaging==26.3 uv==0.13.9" "six==1.16.0"; do   # the tools, and the changed pin, separately
  # shellcheck disable=SC2086
  PIP_CONFIG_FILE=/dev/null "$work/dl/bin/pip" download -q --disable-pip-version-check \
    --cert /etc/ssl/certs/ca-certificates.crt -d "$work/wheelhouse" $set
done
packages=$(printf '%s,' "${REQS[@]}")
packages=${packages%,}
export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"

run() {  # run BACKEND LABEL: build a fresh env, print the seconds
  local backend=$1 label=$2 t0 t1
  rm -rf "$work/envs"
  t0=$(date +%s%N)
  "$REPO/.venv/test/bin/ansible" localhost -c local -m mlinfra.mlhost.python_env -a \
    "path=$work/envs/e backend=$backend offline=true find_links=$work/wheelhouse tool_dir=$work/tools packages=$packages" \
    >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
  t1=$(date +%s%N)
  grep -qE "\"?backend\"?: \"?$backend\"?\$|\"backend\": \"$backend\"" "$work/out.txt"  # YAML or JSON results
  printf '%s %d.%03d\n' "$label" $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000)) | tee -a "$work/times.txt"
}

run uv warmup >/dev/null   # the tool venv (uv, packaging) and uv's cache, once
: >"$work/times.txt"
for i in $(seq 1 "$ROUNDS"); do
  run pip pip
  run uv uv-warm
  UV_CACHE_DIR="$work/uv-cache-$i" run uv uv-cold
done

# Change one pin: an existing env of the 20 packages, six==1.17.0 <-> six==1.16.0.
changed_packages=${packages/six==1.17.0/six==1.16.0}
pin() {  # pin LABEL PACKAGES [ansible options]: one module call on the existing env, print the seconds
  local label=$1 pkgs=$2 t0 t1
  shift 2
  t0=$(date +%s%N)
  "$REPO/.venv/test/bin/ansible" localhost -c local "$@" -m mlinfra.mlhost.python_env -a \
    "path=$work/envs/pin backend=uv offline=true find_links=$work/wheelhouse tool_dir=$work/tools packages=$pkgs" \
    >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
  t1=$(date +%s%N)
  case $label in
    pin-rerun) grep -qE '"?changed"?: false' "$work/out.txt" ;;
    pin-plan) grep -q 'uv pip compile' "$work/out.txt" && grep -q 'downgraded' "$work/out.txt" ;;
    *) grep -qE '"?changed"?: true' "$work/out.txt" ;;
  esac || { echo "$label: unexpected result" >&2; cat "$work/out.txt" >&2; exit 1; }
  printf '%s %d.%03d\n' "$label" $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000)) | tee -a "$work/times.txt"
}
pin pin-first "$packages" >/dev/null
for i in $(seq 1 "$ROUNDS"); do
  pin pin-rerun "$packages"
  pin pin-plan "$changed_packages" --check
  pin pin-apply "$changed_packages"
  pin pin-apply "$packages"
done

# The installers alone, without Ansible or the module: venv creation plus install.
printf '%s\n' "${REQS[@]}" >"$work/reqs.txt"
raw() {  # raw BACKEND: seconds for venv + install into a fresh directory
  local backend=$1 t0 t1
  rm -rf "$work/raw"
  t0=$(date +%s%N)
  if [ "$backend" = uv ]; then
    "$work/tools/venv/bin/uv" venv -q --no-config --python python3 "$work/raw"
    "$work/tools/venv/bin/uv" pip install -q --no-config --python "$work/raw/bin/python" \
      --no-index --find-links "$work/wheelhouse" -r "$work/reqs.txt"
  else
    python3 -m venv "$work/raw"
    PIP_CONFIG_FILE=/dev/null "$work/raw/bin/python" -m pip install -q --disable-pip-version-check \
      --no-index --find-links "$work/wheelhouse" -r "$work/reqs.txt"
  fi
  t1=$(date +%s%N)
  printf 'raw-%s %d.%03d\n' "$backend" $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000)) | tee -a "$work/times.txt"
}
for i in $(seq 1 "$ROUNDS"); do
  raw pip
  raw uv
done

python3 - "$work/times.txt" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    label, seconds = line.split()
    times.setdefault(label, []).append(float(seconds))
med = {k: statistics.median(v) for k, v in times.items()}
print(f"\n{'backend':10} {'median s':>9} {'min':>7} {'max':>7}  runs")
for k, v in times.items():
    print(f"{k:10} {med[k]:9.2f} {min(v):7.2f} {max(v):7.2f}  {len(v)}")
print(f"\nthrough the module: pip / uv-warm = {med['pip'] / med['uv-warm']:.2f}x   pip / uv-cold = {med['pip'] / med['uv-cold']:.2f}x")
print(f"installers alone:   pip / uv (warm cache) = {med['raw-pip'] / med['raw-uv']:.2f}x")
print(f"change one pin:     plan / unchanged rerun = {med['pin-plan'] / med['pin-rerun']:.2f}x   "
      f"apply / unchanged rerun = {med['pin-apply'] / med['pin-rerun']:.2f}x")
PY
