# SPDX-License-Identifier: GPL-3.0-or-later
# Shared by scripts/site.sh and scripts/test.sh: a pinned controller venv and
# the link that makes this checkout importable as ansible_collections/mlinfra/mlhost.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO

log() { printf '[mlhost] %s\n' "$*" >&2; }

# A fresh Debian or Ubuntu has python3 without venv/ensurepip: install it (as root).
ensure_venv_support() {
  if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "python3 cannot create venvs here; installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3-venv >/dev/null
  else
    log "python3 cannot create venvs: install python3-venv (Debian/Ubuntu) or python3 with ensurepip, then rerun"
    exit 1
  fi
}

# make_venv NAME REQUIREMENTS: .venv/NAME with exactly REQUIREMENTS installed.
# Rebuilt only when the requirements file or the Python changes (a stamp says which).
make_venv() {
  local name=$1 requirements=$2
  local venv="$REPO/.venv/$name"
  local stamp
  stamp=$( { cat "$REPO/$requirements"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.mlhost-stamp" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  ensure_venv_support
  # pip in a venv trusts its own certifi bundle; behind a TLS-intercepting proxy (corporate networks,
  # this project's CI) only the system bundle knows the proxy's CA. Use it unless told otherwise.
  if [ -z "${PIP_CERT:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  fi
  log "creating $venv from $requirements"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO/$requirements"
  echo "$stamp" >"$venv/.mlhost-stamp"
}

link_collection() {
  mkdir -p "$REPO/.build/collections/ansible_collections/mlinfra"
  ln -sfn ../../../.. "$REPO/.build/collections/ansible_collections/mlinfra/mlhost"
  export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"
}
