# shellcheck shell=bash
# SPDX-License-Identifier: GPL-3.0-or-later
# STAND-IN for a Miniforge installer (conda-forge's installers cannot be
# downloaded on the test bed). It takes the options the real one takes in
# batch mode (-b -p PREFIX, refusing an existing prefix) and lays out what
# the miniforge module reads afterwards: conda-meta with a conda record,
# bin/conda, condabin/conda, envs/ and the installer's own .condarc.
# MLHOST_STANDIN_FAIL_AFTER_UNPACK=1 in this file's copy makes it fail
# half-way, like an installer whose payload is truncated.
set -eu
CONDA_VERSION=24.11.3
MLHOST_STANDIN_FAIL_AFTER_UNPACK=0
BATCH=0
PREFIX="$HOME/miniforge3"
while getopts "bfhp:su" opt; do
  case $opt in
    b) BATCH=1 ;;
    p) PREFIX=$OPTARG ;;
    h) echo "usage: $0 [-b] [-p PREFIX]"; exit 0 ;;
    *) ;;
  esac
done
[ "$BATCH" = 1 ] || { echo "ERROR: the stand-in only runs in batch mode (-b)" >&2; exit 2; }
if [ -e "$PREFIX" ]; then
  echo "ERROR: File or directory already exists: '$PREFIX'" >&2
  exit 1
fi
echo "PREFIX=$PREFIX"
echo "Unpacking payload ..."
mkdir -p "$PREFIX/bin" "$PREFIX/condabin" "$PREFIX/conda-meta" "$PREFIX/envs" "$PREFIX/pkgs"
if [ "$MLHOST_STANDIN_FAIL_AFTER_UNPACK" = 1 ]; then
  echo "ERROR: payload is truncated (stand-in failing on purpose)" >&2
  exit 3
fi
cat > "$PREFIX/bin/conda" <<CONDA
#!/bin/sh
# stand-in conda: answers --version only
case "\$1" in
  --version|-V) echo "conda $CONDA_VERSION" ;;
  *) echo "stand-in conda: only --version" >&2; exit 2 ;;
esac
CONDA
chmod 755 "$PREFIX/bin/conda"
ln -s ../bin/conda "$PREFIX/condabin/conda"
printf '{"name": "conda", "version": "%s", "build": "py_0", "build_number": 0, "depends": [], "channel": "https://conda.anaconda.org/conda-forge", "subdir": "noarch", "files": ["bin/conda"]}\n' \
  "$CONDA_VERSION" > "$PREFIX/conda-meta/conda-$CONDA_VERSION-py_0.json"
printf 'channels:\n  - conda-forge\n' > "$PREFIX/.condarc"
echo "installation finished."
