#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# A STAND-IN for NVIDIA's CUDA apt repositories, for the test bed of
# shared/TESTBED.md ("Stand-in NVIDIA repositories").
#
#   bash tests/testbed/nvidia_standin_repo.sh OUTDIR
#
# NVIDIA's repositories cannot be reached from the test machines. This script
# builds, under OUTDIR, signed flat apt repositories laid out like NVIDIA's
# debian12/x86_64/ and debian13/x86_64/ (deb822: URIs: file:///OUTDIR/debian12/x86_64/,
# Suites: /, no components), holding STAND-IN packages: NVIDIA's real package
# names, real-shaped versions and the dependency shapes NVIDIA's packages have
# (see README.md written into OUTDIR), with tiny payloads (a text file under
# /usr/share/doc/<package>/STAND-IN, and apt preferences files for the pinning
# packages). No NVIDIA software, binary or kernel module is in them, and no
# package has a maintainer script.
#
# Two OpenPGP keys: key A signs debian12/ and debian13/, key B (the "rotated"
# key) signs a copy under rotated/debian12/, so a test can rotate the key.
# Their secret halves are kept in OUTDIR/keys/secret/ (throwaway test-bed keys)
# so that a rebuild reuses them.
#
# Idempotent: OUTDIR/.recipe holds a hash of this script; when it matches and
# the repositories are complete, OUTDIR is reused as it is.
set -euo pipefail

log() { printf '[nvidia-standin] %s\n' "$*" >&2; }

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }

[[ $# -eq 1 ]] || usage
OUTDIR=$1
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")

ORIGIN="NVIDIA stand-in (mlinfra.mlhost test bed)"
MAINTAINER="mlinfra.mlhost test bed <testbed@mlhost.invalid>"
STANDIN_NOTE="STAND-IN built by the mlinfra.mlhost test bed; not NVIDIA software."

# Driver versions: real-shaped stand-in versions of branches 580 and 590, and a
# newer 595 point release that proves "never beyond the pinned branch".
DRIVER_VERSIONS=(580.95.05-1 590.48.01-1 595.45.04-1)
# Branch-suffixed metas exist up to branch 580 only; from 590 on the branch is
# carried by the version and chosen with nvidia-driver-pinning-<branch>.
SUFFIXED_BRANCHES=(580)
# The driver components a nvidia-driver-pinning-<branch> package pins.
PINNED_PACKAGES="nvidia-open cuda-drivers nvidia-driver nvidia-driver-cuda nvidia-driver-libs libcuda1 libnvidia-ml1 nvidia-smi nvidia-persistenced nvidia-kernel-open-dkms nvidia-kernel-dkms firmware-nvidia-gsp nvidia-fabricmanager libnvidia-nscq nvidia-imex"

CUDA_TOOLKITS=("12-8 12.8.1-1" "13-0 13.0.2-1")
DCGM_VERSION=1:4.4.1-1
CTK_VERSION=1.18.0-1
KEYRING_VERSION=1.1-1
ROTATED_KEYRING_VERSION=1.1-2

# ---------------------------------------------------------------- tools

ensure_tools() {
  local missing=()
  command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg-dev)
  command -v apt-ftparchive >/dev/null 2>&1 || missing+=(apt-utils)
  command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# ---------------------------------------------------------------- recipe

recipe_hash() {
  sha256sum "$SCRIPT_PATH" | cut -c1-16
}

repo_complete() {
  local tree
  for tree in debian12/x86_64 debian13/x86_64 rotated/debian12/x86_64; do
    for f in Packages Packages.gz Release InRelease Release.gpg; do
      [[ -s "$OUTDIR/$tree/$f" ]] || return 1
    done
  done
  for f in standin-a.pub standin-a.gpg standin-b.pub standin-b.gpg fingerprints.txt; do
    [[ -s "$OUTDIR/keys/$f" ]] || return 1
  done
  [[ -s "$OUTDIR/README.md" ]]
}

# ---------------------------------------------------------------- keys

GNUPGHOME=""
cleanup() { [[ -n "$GNUPGHOME" && -d "$GNUPGHOME" ]] && rm -rf "$GNUPGHOME"; return 0; }
trap cleanup EXIT

gpg_b() { gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@"; }

key_uid() { echo "NVIDIA stand-in signing key $1 (mlinfra.mlhost test bed) <standin-$2@mlhost.invalid>"; }

# Make or reuse key NAME (a or b); prints its fingerprint.
ensure_key() {
  local name=$1 label=$2 uid fpr
  uid=$(key_uid "$label" "$name")
  if [[ -s "$OUTDIR/keys/secret/standin-$name.sec.asc" ]]; then
    gpg_b --import "$OUTDIR/keys/secret/standin-$name.sec.asc" 2>/dev/null
  else
    log "generating key $label (RSA 3072, no expiry, no passphrase)"
    gpg_b --cert-digest-algo SHA256 --quick-gen-key "$uid" rsa3072 sign never
  fi
  fpr=$(gpg_b --with-colons --list-secret-keys "$uid" | awk -F: '/^fpr:/ {print $10; exit}')
  [[ ${#fpr} -eq 40 ]] || { log "no fingerprint for key $label"; exit 1; }
  install -d -m 0700 "$OUTDIR/keys/secret"
  gpg_b --armor --export-secret-keys "$fpr" >"$OUTDIR/keys/secret/standin-$name.sec.asc"
  chmod 0600 "$OUTDIR/keys/secret/standin-$name.sec.asc"
  gpg_b --armor --export "$fpr" >"$OUTDIR/keys/standin-$name.pub"
  gpg_b --export "$fpr" >"$OUTDIR/keys/standin-$name.gpg"
  echo "$fpr"
}

# ---------------------------------------------------------------- packages

# build_deb DIR NAME VERSION ARCH DESCRIPTION [FIELD: value]...
# Writes DIR/NAME_VERSION_ARCH.deb (the epoch left out of the file name).
build_deb() {
  local dir=$1 name=$2 version=$3 arch=$4 desc=$5
  shift 5
  local root
  root=$(mktemp -d "$WORK/pkg.XXXXXX")
  chmod 0755 "$root"
  install -d "$root/DEBIAN" "$root/usr/share/doc/$name"
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $MAINTAINER"
    echo "Section: NVIDIA"
    echo "Priority: optional"
    local field
    for field in "$@"; do echo "$field"; done
    echo "Description: STAND-IN for NVIDIA's $name ($desc)"
    echo " $STANDIN_NOTE"
    echo " Stand-in version $version: the real package's name, version shape and"
    echo " dependency shape, with a tiny payload and no maintainer scripts."
  } >"$root/DEBIAN/control"
  printf '%s\n%s %s: %s\n' "$STANDIN_NOTE" "$name" "$version" "$desc" \
    >"$root/usr/share/doc/$name/STAND-IN"
  if [[ -n "${PAYLOAD_DIR:-}" ]]; then
    cp -a "$PAYLOAD_DIR/." "$root/"
  fi
  if [[ -n "${STANDIN_UNITS[$name]:-}" ]]; then
    standin_unit "$root" "$name" "${STANDIN_UNITS[$name]}"
  fi
  dpkg-deb --root-owner-group -Zgzip --build "$root" \
    "$dir/${name}_${version#*:}_${arch}.deb" >/dev/null
  rm -rf "$root"
}

# The services of NVIDIA's packages, as systemd units that do nothing but say
# they are stand-ins (oneshot, RemainAfterExit): a test can enable and start
# them and read their state, no daemon runs.
declare -A STANDIN_UNITS=(
  [nvidia-fabricmanager]=nvidia-fabricmanager.service
  [nvidia-persistenced]=nvidia-persistenced.service
  [nvidia-imex]=nvidia-imex.service
  [datacenter-gpu-manager-4-core]=nvidia-dcgm.service
)

standin_unit() {
  local root=$1 name=$2 unit=$3
  install -d "$root/usr/lib/systemd/system"
  cat >"$root/usr/lib/systemd/system/$unit" <<UNIT
# $STANDIN_NOTE
[Unit]
Description=STAND-IN for $unit of NVIDIA's $name (mlinfra.mlhost test bed)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/echo "STAND-IN $unit: no NVIDIA software runs here"

[Install]
WantedBy=multi-user.target
UNIT
}

# The driver components of one driver version V (Debian names, as in NVIDIA's
# debian12/debian13 repositories): they depend on each other at exactly V.
build_driver_version() {
  local dir=$1 v=$2
  local up=${v%-*}
  local d="driver component, stand-in version $v"
  build_deb "$dir" firmware-nvidia-gsp "$v" amd64 "GSP firmware, $d"
  build_deb "$dir" libnvidia-ml1 "$v" amd64 "NVML library, $d"
  build_deb "$dir" libcuda1 "$v" amd64 "CUDA driver library, $d" \
    "Depends: libnvidia-ml1 (= $v)"
  # Its one program is a stand-in that answers as nvidia-smi does where the driver is installed, not loaded.
  PAYLOAD_DIR=$(mktemp -d "$WORK/payload.XXXXXX")
  install -d "$PAYLOAD_DIR/usr/bin"
  cat >"$PAYLOAD_DIR/usr/bin/nvidia-smi" <<'SMI'
#!/bin/sh
# STAND-IN for nvidia-smi (mlinfra.mlhost test bed; not NVIDIA software): what the real one prints, and its exit
# status 9, on a host whose driver is installed but not loaded (every container of the test bed).
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
exit 9
SMI
  chmod 0755 "$PAYLOAD_DIR/usr/bin/nvidia-smi"
  build_deb "$dir" nvidia-smi "$v" amd64 "nvidia-smi, $d; a stand-in program that says no driver is loaded" \
    "Depends: libnvidia-ml1 (= $v)"
  rm -rf "$PAYLOAD_DIR"
  PAYLOAD_DIR=""
  build_deb "$dir" nvidia-persistenced "$v" amd64 "persistence daemon, $d; no binary shipped"
  build_deb "$dir" nvidia-driver-libs "$v" amd64 "OpenGL/Vulkan libraries, $d"
  build_deb "$dir" nvidia-kernel-open-dkms "$v" amd64 "open GPU kernel modules (DKMS), $d; no module source shipped" \
    "Depends: firmware-nvidia-gsp (= $v)" \
    "Provides: nvidia-kernel-dkms-any (= $v)" \
    "Conflicts: nvidia-kernel-dkms"
  build_deb "$dir" nvidia-kernel-dkms "$v" amd64 "proprietary GPU kernel modules (DKMS), $d; no module source shipped" \
    "Depends: firmware-nvidia-gsp (= $v)" \
    "Provides: nvidia-kernel-dkms-any (= $v)" \
    "Conflicts: nvidia-kernel-open-dkms"
  build_deb "$dir" nvidia-driver-cuda "$v" amd64 "compute-only (headless) driver meta, $d" \
    "Depends: nvidia-smi (= $v), libcuda1 (= $v), nvidia-persistenced (= $v)"
  build_deb "$dir" nvidia-driver "$v" amd64 "full driver meta, $d" \
    "Depends: nvidia-driver-libs (= $v), nvidia-driver-cuda (= $v)"
  # The unversioned metas: their dependencies are ">=", so a newer component
  # satisfies them (installing the meta at one version alone locks nothing).
  build_deb "$dir" nvidia-open "$v" amd64 "meta: driver with open kernel modules, stand-in version $v" \
    "Depends: nvidia-driver (>= $up), nvidia-kernel-open-dkms (>= $up)"
  build_deb "$dir" cuda-drivers "$v" amd64 "meta: driver with proprietary kernel modules, stand-in version $v" \
    "Depends: nvidia-driver (>= $up), nvidia-kernel-dkms (>= $up)"
  # Fabric manager is built for one driver version and needs exactly it.
  build_deb "$dir" nvidia-fabricmanager "$v" amd64 "NVSwitch fabric manager at driver $v; no binary shipped" \
    "Depends: nvidia-kernel-open-dkms (= $v) | nvidia-kernel-dkms (= $v)"
  # Its NSCQ library (NVSwitch queries, which DCGM and nvidia-smi use) at exactly the same version; IMEX the same.
  build_deb "$dir" libnvidia-nscq "$v" amd64 "NVSwitch configuration and query library at driver $v; no library shipped"
  build_deb "$dir" nvidia-imex "$v" amd64 "IMEX daemon (Grace Blackwell multi-node NVLink) at driver $v; no binary shipped" \
    "Depends: nvidia-kernel-open-dkms (= $v) | nvidia-kernel-dkms (= $v)"
}

# Branch-suffixed metas (580 and earlier): still ">=" on unversioned Debian
# component names, so without a pinning package they pull the newest driver.
build_branch_metas() {
  local dir=$1 b=$2 v=$3
  local up=${v%-*}
  build_deb "$dir" "cuda-drivers-$b" "$v" amd64 "branch $b meta, proprietary kernel modules, stand-in version $v" \
    "Depends: nvidia-driver (>= $up), nvidia-kernel-dkms (>= $up)"
  build_deb "$dir" "nvidia-open-$b" "$v" amd64 "branch $b meta, open kernel modules, stand-in version $v" \
    "Depends: nvidia-driver (>= $up), nvidia-kernel-open-dkms (>= $up)"
}

# nvidia-driver-pinning-<branch>: an apt preferences file at priority 1000
# (which also lets apt downgrade into the branch); one installed at a time.
build_pinning() {
  local dir=$1 b=$2
  PAYLOAD_DIR=$(mktemp -d "$WORK/payload.XXXXXX")
  install -d "$PAYLOAD_DIR/etc/apt/preferences.d"
  {
    echo "# STAND-IN for the preferences file of NVIDIA's nvidia-driver-pinning-$b"
    echo "# (mlinfra.mlhost test bed): pins the driver packages to branch $b."
    echo "Package: $PINNED_PACKAGES"
    echo "Pin: version $b.*"
    echo "Pin-Priority: 1000"
  } >"$PAYLOAD_DIR/etc/apt/preferences.d/nvidia-driver-pinning-$b"
  build_deb "$dir" "nvidia-driver-pinning-$b" "$b-1" all "APT driver pinning file for driver branch $b" \
    "Provides: nvidia-driver-pinning" \
    "Conflicts: nvidia-driver-pinning" \
    "Replaces: nvidia-driver-pinning"
  rm -rf "$PAYLOAD_DIR"
  PAYLOAD_DIR=""
}

build_keyring() {
  local dir=$1 version=$2 keyfile=$3
  PAYLOAD_DIR=$(mktemp -d "$WORK/payload.XXXXXX")
  install -d "$PAYLOAD_DIR/usr/share/keyrings"
  install -m 0644 "$keyfile" "$PAYLOAD_DIR/usr/share/keyrings/cuda-archive-keyring.gpg"
  build_deb "$dir" cuda-keyring "$version" all "repository keyring; holds a stand-in key, and no sources.list entry for NVIDIA's unreachable URL"
  rm -rf "$PAYLOAD_DIR"
  PAYLOAD_DIR=""
}

# nvidia-container-toolkit-base with a payload: STAND-IN scripts for nvidia-ctk (--version, cdi generate, cdi list)
# and nvidia-container-runtime, and the nvidia-cdi-refresh units the real 1.18 package ships (their shape: a oneshot
# service writing /var/run/cdi/nvidia.yaml unless NVIDIA_CTK_CDI_OUTPUT_FILE_PATH says otherwise, and a path unit).
build_ctk_base() {
  local dir=$1
  PAYLOAD_DIR=$(mktemp -d "$WORK/payload.XXXXXX")
  install -d "$PAYLOAD_DIR/usr/bin" "$PAYLOAD_DIR/usr/lib/systemd/system"
  cat >"$PAYLOAD_DIR/usr/bin/nvidia-ctk" <<CTK
#!/bin/sh
# STAND-IN for NVIDIA's nvidia-ctk (mlinfra.mlhost test bed): not NVIDIA software. It answers --version,
# 'cdi generate [--output=F] [--format=yaml|json]' (a small valid CDI spec for nvidia.com/gpu, one device per GPU
# that nvidia-smi -L lists, fails like the real one without a driver) and 'cdi list'.
set -eu
case "\${1:-}" in
  --version|-v) echo "NVIDIA Container Toolkit CLI version ${CTK_VERSION%-*} (STAND-IN, mlinfra.mlhost test bed)"; exit 0 ;;
esac
[ "\${1:-}" = cdi ] || { echo "nvidia-ctk STAND-IN: only --version and cdi are stood in" >&2; exit 2; }
shift
cmd=\${1:-}; shift || true
case "\$cmd" in
  generate)
    out=\${NVIDIA_CTK_CDI_OUTPUT_FILE_PATH:-}
    for arg in "\$@"; do
      case "\$arg" in --output=*) out=\${arg#--output=} ;; esac
    done
    gpus=\$(nvidia-smi -L 2>/dev/null) || { echo 'level=error msg="failed to generate CDI spec: failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND" (nvidia-ctk STAND-IN)' >&2; exit 1; }
    n=\$(printf '%s\n' "\$gpus" | grep -c '^GPU ' || true)
    spec=\$( {
      echo "# STAND-IN CDI spec written by the test bed's nvidia-ctk (mlinfra.mlhost); not NVIDIA's."
      echo "cdiVersion: 0.5.0"
      echo "kind: nvidia.com/gpu"
      echo "devices:"
      i=0
      while [ "\$i" -lt "\$n" ]; do
        echo "  - name: \\"\$i\\""
        echo "    containerEdits:"
        echo "      deviceNodes:"
        echo "        - path: /dev/nvidia\$i"
        i=\$((i + 1))
      done
      echo "  - name: all"
      echo "    containerEdits:"
      echo "      deviceNodes:"
      echo "        - path: /dev/nvidiactl"
      echo "containerEdits:"
      echo "  env:"
      echo "    - NVIDIA_STANDIN=1"
    } )
    if [ -n "\$out" ]; then
      mkdir -p "\$(dirname "\$out")"
      printf '%s\n' "\$spec" >"\$out"
      echo "level=info msg=\\"Generated CDI spec with version 0.5.0\\" (STAND-IN, \$out)" >&2
    else
      printf '%s\n' "\$spec"
    fi ;;
  list)
    echo 'level=info msg="Found devices" (STAND-IN)' >&2
    for f in /etc/cdi/*.yaml /var/run/cdi/*.yaml; do
      [ -f "\$f" ] || continue
      sed -n 's/^  - name: "\{0,1\}\([^"]*\)"\{0,1\}\$/nvidia.com\/gpu=\1/p' "\$f"
    done ;;
  *) echo "nvidia-ctk STAND-IN: cdi \$cmd is not stood in" >&2; exit 2 ;;
esac
CTK
  cat >"$PAYLOAD_DIR/usr/bin/nvidia-container-runtime" <<'RUNTIME'
#!/bin/sh
# STAND-IN for NVIDIA's nvidia-container-runtime (mlinfra.mlhost test bed): not NVIDIA software. It exists so that
# engines configured for it find the binary; it runs no container.
echo "nvidia-container-runtime STAND-IN (mlinfra.mlhost test bed): runs no container" >&2
exit 1
RUNTIME
  chmod 0755 "$PAYLOAD_DIR/usr/bin/nvidia-ctk" "$PAYLOAD_DIR/usr/bin/nvidia-container-runtime"
  cat >"$PAYLOAD_DIR/usr/lib/systemd/system/nvidia-cdi-refresh.service" <<'UNIT'
# STAND-IN for NVIDIA's nvidia-cdi-refresh.service (mlinfra.mlhost test bed).
[Unit]
Description=Refresh NVIDIA CDI specification file (STAND-IN)
ConditionPathExists=|/usr/bin/nvidia-smi

[Service]
Type=oneshot
Environment=NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/var/run/cdi/nvidia.yaml
EnvironmentFile=-/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env
ExecCondition=/usr/bin/nvidia-smi -L
ExecStart=/usr/bin/nvidia-ctk cdi generate

[Install]
WantedBy=multi-user.target
UNIT
  cat >"$PAYLOAD_DIR/usr/lib/systemd/system/nvidia-cdi-refresh.path" <<'UNIT'
# STAND-IN for NVIDIA's nvidia-cdi-refresh.path (mlinfra.mlhost test bed).
[Unit]
Description=Trigger a CDI refresh when the NVIDIA driver changes (STAND-IN)

[Path]
PathChanged=/lib/modules/%v/modules.dep
Unit=nvidia-cdi-refresh.service

[Install]
WantedBy=multi-user.target
UNIT
  build_deb "$dir" nvidia-container-toolkit-base "$CTK_VERSION" amd64 "container toolkit base, stand-in version $CTK_VERSION; STAND-IN nvidia-ctk and nvidia-container-runtime scripts, nvidia-cdi-refresh units"
  rm -rf "$PAYLOAD_DIR"
  PAYLOAD_DIR=""
}

build_others() {
  local dir=$1 entry series version
  for entry in "${CUDA_TOOLKITS[@]}"; do
    read -r series version <<<"$entry"
    build_deb "$dir" "cuda-toolkit-$series" "$version" amd64 "CUDA toolkit ${series/-/.} meta, stand-in version $version; no toolkit shipped, no driver dependency"
  done
  build_deb "$dir" datacenter-gpu-manager-4-core "$DCGM_VERSION" amd64 "DCGM 4 core, stand-in version $DCGM_VERSION"
  build_deb "$dir" datacenter-gpu-manager-4-cuda12 "$DCGM_VERSION" amd64 "DCGM 4 for CUDA 12, stand-in version $DCGM_VERSION" \
    "Depends: datacenter-gpu-manager-4-core (= $DCGM_VERSION)"
  build_deb "$dir" datacenter-gpu-manager-4-cuda13 "$DCGM_VERSION" amd64 "DCGM 4 for CUDA 13, stand-in version $DCGM_VERSION" \
    "Depends: datacenter-gpu-manager-4-core (= $DCGM_VERSION)"
  build_deb "$dir" libnvidia-container1 "$CTK_VERSION" amd64 "container library, stand-in version $CTK_VERSION"
  build_deb "$dir" libnvidia-container-tools "$CTK_VERSION" amd64 "container CLI, stand-in version $CTK_VERSION" \
    "Depends: libnvidia-container1 (>= $CTK_VERSION)"
  build_ctk_base "$dir"
  build_deb "$dir" nvidia-container-toolkit "$CTK_VERSION" amd64 "container toolkit, stand-in version $CTK_VERSION" \
    "Depends: nvidia-container-toolkit-base (= $CTK_VERSION), libnvidia-container-tools (= $CTK_VERSION)"
}

build_pool() {
  local dir=$1 v b
  mkdir -p "$dir"
  for v in "${DRIVER_VERSIONS[@]}"; do
    build_driver_version "$dir" "$v"
  done
  for b in "${SUFFIXED_BRANCHES[@]}"; do
    for v in "${DRIVER_VERSIONS[@]}"; do
      [[ $v == "$b".* ]] && build_branch_metas "$dir" "$b" "$v"
    done
  done
  for v in "${DRIVER_VERSIONS[@]}"; do
    build_pinning "$dir" "${v%%.*}"
  done
  build_others "$dir"
}

# ---------------------------------------------------------------- repositories

# make_tree TREE POOL KEYRING_DEB_VERSION KEYNAME FPR
make_tree() {
  local tree=$1 pool=$2 kversion=$3 keyname=$4 fpr=$5
  rm -rf "$tree"
  mkdir -p "$tree"
  cp "$pool"/*.deb "$tree/"
  build_keyring "$tree" "$kversion" "$OUTDIR/keys/standin-$keyname.gpg"
  # NVIDIA's trees carry their key as <short id>.pub beside the packages.
  cp "$OUTDIR/keys/standin-$keyname.pub" "$tree/$(tr 'A-F' 'a-f' <<<"${fpr: -8}").pub"
  (
    cd "$tree"
    apt-ftparchive packages . >Packages 2>/dev/null
    gzip -9nkf Packages
    apt-ftparchive \
      -o "APT::FTPArchive::Release::Origin=$ORIGIN" \
      -o "APT::FTPArchive::Release::Label=$ORIGIN" \
      -o "APT::FTPArchive::Release::Architectures=amd64 all" \
      -o "APT::FTPArchive::Release::Description=STAND-IN for an NVIDIA CUDA repository; not NVIDIA software" \
      release . >"$WORK/Release"
    mv "$WORK/Release" Release
    gpg_b --digest-algo SHA256 --local-user "$fpr" --clearsign --output InRelease Release
    gpg_b --digest-algo SHA256 --local-user "$fpr" --armor --detach-sign --output Release.gpg Release
  )
}

write_readme() {
  local fa=$1 fb=$2
  cat >"$OUTDIR/README.md" <<README
# STAND-IN NVIDIA CUDA apt repositories (mlinfra.mlhost test bed)

Everything here is a **stand-in**, built by
\`tests/testbed/nvidia_standin_repo.sh\` because NVIDIA's repositories cannot
be reached from the test machines. The packages carry NVIDIA's real package
names, real-shaped versions and the dependency shapes of NVIDIA's packages;
their payloads are a text file (\`/usr/share/doc/<package>/STAND-IN\`) and, for
the pinning packages, an apt preferences file; \`nvidia-container-toolkit-base\`
ships STAND-IN shell scripts \`/usr/bin/nvidia-ctk\` (\`--version\`, \`cdi generate\`,
\`cdi list\`) and \`/usr/bin/nvidia-container-runtime\` (runs no container) and
stand-in \`nvidia-cdi-refresh.service\`/\`.path\` units. No NVIDIA software, no
\`nvidia-smi\` binary and no kernel module is in them; no package has a
maintainer script. Every package description says STAND-IN.

| Path | What it is |
|---|---|
| \`debian12/x86_64/\` | stand-in of NVIDIA's flat \`debian12/x86_64/\` repository, signed with key A |
| \`debian13/x86_64/\` | the same packages as a stand-in \`debian13/x86_64/\`, signed with key A |
| \`rotated/debian12/x86_64/\` | a copy of \`debian12/x86_64/\` signed with key B (the rotated key); its \`cuda-keyring\` is $ROTATED_KEYRING_VERSION and holds key B |
| \`keys/standin-a.pub\`, \`.gpg\` | key A (the "old" key), armored and binary (for \`Signed-By:\`) |
| \`keys/standin-b.pub\`, \`.gpg\` | key B (the "rotated" key) |
| \`keys/fingerprints.txt\` | \`name fingerprint\` per key |
| \`keys/secret/\` | the keys' secret halves: throwaway test-bed keys, kept so a rebuild reuses them |
| \`.recipe\` | hash of the script that built this; a matching hash means "reuse" |

Each tree has \`Packages\`, \`Packages.gz\`, \`Release\`, \`InRelease\` (clearsigned)
and \`Release.gpg\` (detached) at its top, SHA256 digests, Origin and Label
"$ORIGIN", and the key as \`<short id>.pub\` as NVIDIA's trees have it.

A source for it (deb822):

    Types: deb
    URIs: file://$OUTDIR/debian12/x86_64/
    Suites: /
    Signed-By: $OUTDIR/keys/standin-a.gpg

## Keys

    standin-a $fa
    standin-b $fb

## Packages (all stand-ins)

- Driver components at stand-in versions ${DRIVER_VERSIONS[*]}:
  firmware-nvidia-gsp, libnvidia-ml1, libcuda1, nvidia-smi,
  nvidia-persistenced, nvidia-driver-libs, nvidia-kernel-open-dkms,
  nvidia-kernel-dkms (the two conflict), nvidia-driver-cuda (compute-only
  meta), nvidia-driver; they depend on each other at exactly one version.
- \`nvidia-open\` and \`cuda-drivers\` (unversioned metas) at each version,
  depending \`>=\` on nvidia-driver and the kernel module package.
- \`cuda-drivers-580\`, \`nvidia-open-580\`: branch metas, 580 only (NVIDIA
  stopped branch-suffixed metas after 580), also \`>=\`: without a pinning
  package they pull the newest (595) components.
- \`nvidia-driver-pinning-580\`, \`-590\`, \`-595\` (Provides/Conflicts/Replaces
  \`nvidia-driver-pinning\`): each ships
  \`/etc/apt/preferences.d/nvidia-driver-pinning-<branch>\` with
  \`Pin: version <branch>.*\` and \`Pin-Priority: 1000\` for the driver packages.
- \`nvidia-fabricmanager\` at each driver version, needing that exact version
  of the kernel module package.
- \`cuda-keyring\` $KEYRING_VERSION (holds key A as
  \`/usr/share/keyrings/cuda-archive-keyring.gpg\`; no sources entry),
  \`cuda-toolkit-12-8\`, \`cuda-toolkit-13-0\` (metas, no driver dependency),
  \`datacenter-gpu-manager-4-core\`, \`-cuda12\`, \`-cuda13\` ($DCGM_VERSION),
  \`nvidia-container-toolkit\`, \`nvidia-container-toolkit-base\`,
  \`libnvidia-container-tools\`, \`libnvidia-container1\` ($CTK_VERSION).
README
}

# ---------------------------------------------------------------- main

main() {
  local want
  want=$(recipe_hash)
  if [[ -s "$OUTDIR/.recipe" && "$(cat "$OUTDIR/.recipe")" == "$want" ]] && repo_complete; then
    log "$OUTDIR is built by this recipe ($want), reused"
    return
  fi
  ensure_tools
  GNUPGHOME=$(mktemp -d /tmp/nvidia-standin-gnupg.XXXXXX)
  export GNUPGHOME
  WORK="$GNUPGHOME/work"
  mkdir -p "$WORK" "$OUTDIR/keys"
  rm -f "$OUTDIR/.recipe"
  local fa fb
  fa=$(ensure_key a A)
  fb=$(ensure_key b B)
  printf 'standin-a %s\nstandin-b %s\n' "$fa" "$fb" >"$OUTDIR/keys/fingerprints.txt"
  log "building stand-in packages"
  build_pool "$WORK/pool"
  make_tree "$OUTDIR/debian12/x86_64" "$WORK/pool" "$KEYRING_VERSION" a "$fa"
  make_tree "$OUTDIR/debian13/x86_64" "$WORK/pool" "$KEYRING_VERSION" a "$fa"
  make_tree "$OUTDIR/rotated/debian12/x86_64" "$WORK/pool" "$ROTATED_KEYRING_VERSION" b "$fb"
  write_readme "$fa" "$fb"
  echo "$want" >"$OUTDIR/.recipe"
  log "built $OUTDIR ($(find "$OUTDIR/debian12/x86_64" -name '*.deb' | wc -l) stand-in packages per tree)"
}

main
