#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The real-container test bed of shared/TESTBED.md, as code.
#
#   tests/testbed/testbed.sh dockerd   install (docker.io) and start dockerd when absent
#   tests/testbed/testbed.sh images    build the Debian 12 / 13 base images when absent
#   tests/testbed/testbed.sh standin   build the stand-in NVIDIA apt repositories
#                                      (tests/testbed/nvidia_standin_repo.sh) under
#                                      $MLHOST_TESTBED_CACHE/nvidia-standin when absent
#   tests/testbed/testbed.sh all       all three (default)
#   tests/testbed/testbed.sh tag NAME  the image tag NAME (debian12, debian13) gets
#
# dockerd runs with --bridge=none --iptables=false: test containers use the
# host network only, so no traffic ever goes to a private address range.
# Images come from debootstrap (no registry is reachable) and carry python3,
# systemd as PID 1, sudo, python3-apt and the machine's CA bundle (the
# package proxy intercepts TLS). The tag includes a hash of everything that
# goes into an image, so a changed recipe or CA bundle rebuilds it and an
# unchanged one is reused.
set -euo pipefail

MIRROR=${MLHOST_TESTBED_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${MLHOST_TESTBED_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOST_CA=${MLHOST_TESTBED_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CACHE=${MLHOST_TESTBED_CACHE:-/var/cache/mlhost-testbed}
PACKAGES=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,procps,iproute2
DOCKERD_LOG=/var/log/mlhost-testbed-dockerd.log

log() { printf '[testbed] %s\n' "$*" >&2; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_dockerd() {
  if docker info >/dev/null 2>&1; then
    log "dockerd is running"
    return
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io from Debian"
    apt_install docker.io
  fi
  log "starting dockerd (--bridge=none --iptables=false), log in $DOCKERD_LOG"
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    >"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd is up"; return; }
    sleep 1
  done
  log "dockerd did not start within 60 s; its log:"
  tail -n 30 "$DOCKERD_LOG" >&2
  exit 1
}

# The tag of an image: a hash of its recipe (the build_image function and the
# package list) and of the CA bundle that goes into it. Edits elsewhere in this
# script do not rebuild the images.
image_tag() {
  local name=$1
  local sum
  sum=$( { declare -f build_image; echo "$PACKAGES $MIRROR $SECURITY_MIRROR"; cat "$HOST_CA"; } | sha256sum | cut -c1-12)
  echo "mlhost-testbed/${name}:${sum}"
}

# Per-platform apt archives, bind-mounted into the containers by the molecule
# base config, so a package is downloaded once across scenarios and runs.
apt_caches() {
  local name
  for name in debian12 debian13; do
    mkdir -p "$CACHE/apt/$name/partial"
  done
}

build_image() {
  local name=$1 suite=$2
  local tag
  tag=$(image_tag "$name")
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag is present, reused"
  else
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local root
    root=$(mktemp -d /var/tmp/mlhost-testbed-root.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" RETURN
    mkdir -p "$CACHE/$suite"
    log "debootstrap $suite into $root"
    local t0=$SECONDS
    debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/$suite" \
      "$suite" "$root" "$MIRROR" >"$CACHE/debootstrap-$suite.log" 2>&1 || {
      tail -n 30 "$CACHE/debootstrap-$suite.log" >&2
      exit 1
    }
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb $SECURITY_MIRROR $suite-security main
SOURCES
    # The machine's CA bundle (it trusts the TLS-intercepting proxy).
    install -m 0644 "$HOST_CA" "$root/usr/local/share/ca-certificates/mlhost-testbed-host.crt"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
    # A container has no console to get: keep systemd from waiting for one.
    for unit in getty@tty1.service serial-getty@.service console-getty.service systemd-firstboot.service; do
      ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    rm -f "$root/etc/machine-id" && : >"$root/etc/machine-id"
    apt-get -o Dir="$root" clean 2>/dev/null || rm -f "$root"/var/cache/apt/archives/*.deb
    rm -rf "$root"/var/lib/apt/lists/*_Packages "$root"/var/lib/apt/lists/*_InRelease
    tar -C "$root" -c . | docker import \
      --change 'CMD ["/lib/systemd/systemd"]' \
      --change 'ENV container=docker' \
      - "$tag" >/dev/null
    log "built $tag in $((SECONDS - t0)) s"
  fi
  docker tag "$tag" "mlhost-testbed/${name}:latest"
}

# The stand-in NVIDIA repositories (stand-in packages, test-bed keys): the
# nvidia_repo scenario mounts them read-only at /srv/nvidia-standin.
standin_repo() {
  bash "$(dirname "${BASH_SOURCE[0]}")/nvidia_standin_repo.sh" "$CACHE/nvidia-standin"
  # The stand-in PCI buses of GPU nodes (tests/unit/gpu_nodes.py's), which the gpu_fleet scenario mounts over
  # /sys/bus/pci/devices; cpu_only is an empty bus.
  python3 "$(dirname "${BASH_SOURCE[0]}")/pci_standin.py" "$CACHE/pci"
}

cmd=${1:-all}
case "$cmd" in
  dockerd) ensure_dockerd ;;
  images) apt_caches; build_image debian12 bookworm; build_image debian13 trixie ;;
  standin) standin_repo ;;
  all) ensure_dockerd; apt_caches; build_image debian12 bookworm; build_image debian13 trixie; standin_repo ;;
  tag) image_tag "$2" ;;
  *) echo "usage: $0 [dockerd|images|standin|all]" >&2; exit 2 ;;
esac
