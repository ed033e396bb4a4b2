#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Real apt, in a test-bed container, against the STAND-IN NVIDIA repositories
# built by nvidia_standin_repo.sh; writes what apt said as captures.
#
#   bash tests/testbed/nvidia_standin_check.sh OUTDIR [CAPTURE_DIR]
#
# OUTDIR is the stand-in repository (built first when needed); CAPTURE_DIR
# (default tests/unit/fixtures/nvidia_standin) gets one text file per check,
# the commands at its top. Needs dockerd and the test-bed images
# (tests/testbed/testbed.sh all). Each check runs in a fresh container
# (--network host, no systemd) whose only apt source is the stand-in.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: $0 OUTDIR [CAPTURE_DIR]" >&2; exit 2; }
OUTDIR=$1
CAPTURES=${2:-$HERE/../unit/fixtures/nvidia_standin}
bash "$HERE/nvidia_standin_repo.sh" "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
mkdir -p "$CAPTURES"
FAILED=0

# Inside the container: the stand-in as the only source, and `run`, which
# prints each command and its exit status. It is expanded in the container,
# hence single quotes.
# shellcheck disable=SC2016
PRELUDE='set -u
export DEBIAN_FRONTEND=noninteractive
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
source_file() {
  printf "Types: deb\nURIs: file:///srv/nvidia-standin/%s/\nSuites: /\nSigned-By: /srv/nvidia-standin/keys/%s\n" "$1" "$2" >/etc/apt/sources.list.d/x.sources
}
run() { echo "\$ $*"; "$@" 2>&1; echo "[exit status $?]"; echo; }
versions() { echo "\$ dpkg-query -W (NVIDIA stand-in packages installed)"; dpkg-query -W -f="\${Package} \${Version} \${db:Status-Abbrev}\n" "nvidia-*" "libcuda1" "libnvidia-*" "cuda-*" "firmware-nvidia-*" "datacenter-*" 2>/dev/null | grep -v " un *$" | sort; echo; }
'

# check NAME IMAGE EXPECT TITLE BODY: EXPECT holds fixed strings, separated
# by ";;", that the output must all hold.
check() {
  local name=$1 image=$2 expect=$3 title=$4 body=$5 out
  out=$(docker run --rm --network host -v "$OUTDIR:/srv/nvidia-standin:ro" \
    "mlhost-testbed/$image:latest" bash -c "$PRELUDE$body" 2>&1) || true
  {
    echo "# Capture of real apt against the STAND-IN NVIDIA repository (mlinfra.mlhost test bed)."
    echo "# Check: $title"
    echo "# Made by tests/testbed/nvidia_standin_check.sh in mlhost-testbed/$image"
    echo "# (docker run --rm --network host -v OUTDIR:/srv/nvidia-standin:ro); the packages are stand-ins."
    echo "# Commands:"
    local line
    while IFS= read -r line; do echo "#   $line"; done <<<"$body"
    echo
    printf "%s\n" "$out" | sed "s/\r$//; s/\r/\n/g"
  } >"$CAPTURES/$name.txt"
  local want missing=""
  while IFS= read -r want; do
    [[ -z "$want" ]] || grep -qF -- "$want" <<<"$out" || missing+=" '$want'"
  done <<<"${expect//;;/$'\n'}"
  if [[ -z "$missing" ]]; then
    echo "ok   $name: $title"
  else
    echo "FAIL $name: $title (missing$missing; see $CAPTURES/$name.txt)"
    FAILED=1
  fi
}

check update_key_a debian12 "[exit status 0];;release o=NVIDIA stand-in (mlinfra.mlhost test bed)" "apt-get update succeeds with key A" '
source_file debian12/x86_64 standin-a.gpg
run apt-get update
run apt-cache policy'

check update_key_b_refused debian12 "NO_PUBKEY;;is not signed;;[exit status 100]" "apt-get update fails when Signed-By is key B (repository signed with key A)" '
source_file debian12/x86_64 standin-b.gpg
run apt-get update'

check rotated_key debian12 "NO_PUBKEY;;[exit status 100];;[exit status 0];;Candidate: 1.1-2" "the rotated copy (signed with key B): refused with key A, accepted with key B" '
source_file rotated/debian12/x86_64 standin-a.gpg
run apt-get update
source_file rotated/debian12/x86_64 standin-b.gpg
run apt-get update
run apt-cache policy cuda-keyring'

check update_debian13_sqv debian13 "[exit status 0]" "Debian 13 apt (Sequoia sqv) accepts the debian13 tree signed with key A" '
source_file debian13/x86_64 standin-a.gpg
run apt-get update
run apt-cache policy nvidia-open'

check cuda_drivers_580_unpinned debian12 "cuda-drivers-580 580.95.05-1 ii;;nvidia-driver 595.45.04-1 ii;;nvidia-kernel-dkms 595.45.04-1 ii" "apt-get install cuda-drivers-580 without a pinning package pulls the newest (595) components" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y cuda-drivers-580
versions'

check cuda_drivers_580_pinned debian12 "nvidia-driver 580.95.05-1 ii;;nvidia-kernel-dkms 580.95.05-1 ii;;libcuda1 580.95.05-1 ii" "nvidia-driver-pinning-580, then cuda-drivers-580: 580 parts only" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y nvidia-driver-pinning-580
run apt-get install -y cuda-drivers-580
versions
run apt-cache policy nvidia-driver'

check nvidia_open_pinned_590 debian12 "nvidia-open 590.48.01-1 ii;;nvidia-driver 590.48.01-1 ii;;nvidia-kernel-open-dkms 590.48.01-1 ii;;Candidate: 590.48.01-1" "nvidia-driver-pinning-590, then nvidia-open: 590.*, not 595" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y nvidia-driver-pinning-590
run cat /etc/apt/preferences.d/nvidia-driver-pinning-590
run apt-get install -y nvidia-open
versions
run apt-cache policy nvidia-open
run apt-get upgrade -y
versions'

check nvidia_open_unpinned debian12 "nvidia-open 595.45.04-1 ii;;nvidia-driver 595.45.04-1 ii;;Candidate: 595.45.04-1" "nvidia-open without a pinning package: 595" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y nvidia-open
versions
run apt-cache policy nvidia-open'

check hold_upgrade debian12 "Inst nvidia-driver [590.48.01-1] (595.45.04-1;;nvidia-driver 590.48.01-1 hi;;nvidia-open 590.48.01-1 hi;;0 upgraded" "apt-mark hold, then apt-get upgrade: held packages keep 590 (holding only the meta does not)" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
apt-get install -y -qq nvidia-driver-pinning-590 >/dev/null && apt-get install -y -qq nvidia-open >/dev/null
run apt-get remove -y nvidia-driver-pinning-590
versions
run apt-mark hold nvidia-open
run apt-get upgrade -s
run apt-mark hold nvidia-driver nvidia-driver-cuda nvidia-driver-libs libcuda1 libnvidia-ml1 nvidia-smi nvidia-persistenced nvidia-kernel-open-dkms firmware-nvidia-gsp
run apt-get upgrade -y
versions
run apt-cache policy nvidia-open'

check fabricmanager_exact debian12 "nvidia-fabricmanager 590.48.01-1 ii;;Depends: nvidia-kernel-open-dkms (= 595.45.04-1) but 590.48.01-1 is to be installed" "nvidia-fabricmanager needs its exact driver version" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y nvidia-driver-pinning-590
run apt-get install -y nvidia-open nvidia-fabricmanager
versions
run apt-cache show nvidia-fabricmanager=595.45.04-1
run apt-get install -s nvidia-fabricmanager=595.45.04-1'

check others debian12 "datacenter-gpu-manager-4-cuda13 1:4.4.1-1 ii;;nvidia-container-toolkit 1.18.0-1 ii;;cuda-archive-keyring.gpg" "cuda-keyring, CUDA toolkit metas, DCGM 4, container toolkit install" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-get install -y cuda-keyring cuda-toolkit-12-8 cuda-toolkit-13-0 datacenter-gpu-manager-4-cuda12 datacenter-gpu-manager-4-cuda13 nvidia-container-toolkit
versions
run cat /usr/share/doc/nvidia-container-toolkit/STAND-IN
run ls -l /usr/share/keyrings/cuda-archive-keyring.gpg'

check toolkits_offered debian12 "cuda-toolkit-12-8;;cuda-toolkit-13-0;;[exit status 0]" "which CUDA toolkits and driver branches the repository offers (apt-cache pkgnames, then policy)" '
source_file debian12/x86_64 standin-a.gpg
apt-get update -qq
run apt-cache pkgnames cuda-toolkit-
run apt-cache policy cuda-toolkit-12-8 cuda-toolkit-13-0
run apt-cache pkgnames nvidia-driver-pinning-
run apt-cache pkgnames cuda-drivers-'

exit "$FAILED"
