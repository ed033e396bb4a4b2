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

# make_venv NAME REQUIREMENTS [PYTHON]: .venv/NAME with exactly REQUIREMENTS installed, made with
# PYTHON (default python3). Rebuilt only when the requirements file or the Python changes (a stamp
# says which). Returns non-zero when pip fails (no stamp is written then).
make_venv() {
  local name=$1 requirements=$2 python=${3:-python3}
  local venv="$REPO/.venv/$name"
  local stamp
  stamp=$( { cat "$REPO/$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
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
  "$python" -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO/$requirements" || return 1
  echo "$stamp" >"$venv/.mlhost-stamp"
}

# find_python312: the path of a working Python 3.12 or newer (ansible-core 2.21's floor): python3.12 or
# python3.13 on PATH, else pyenv's under ~/.pyenv/versions (a pyenv shim of a version that is not
# selected is found on PATH but fails, so each candidate is run). MLHOST_PYTHON312 overrides.
find_python312() {
  local c
  for c in ${MLHOST_PYTHON312:-} "$(command -v python3.12 || true)" "$(command -v python3.13 || true)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
    if [ -z "$c" ] || [ ! -x "$c" ]; then continue; fi
    if "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

link_collection() {
  mkdir -p "$REPO/.build/collections/ansible_collections/mlinfra"
  ln -sfn ../../../.. "$REPO/.build/collections/ansible_collections/mlinfra/mlhost"
  export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"
}
