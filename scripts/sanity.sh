#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run `ansible-test sanity --venv` on this collection without GitHub, Galaxy or
# the get-pip download host; only PyPI (through pip's own config) is needed.
#
# Usage: [VENV=/path/to/venv] scripts/sanity.sh [extra ansible-test args...]
#   VENV  venv with ansible-core installed (default: <repo>/.venv/test, made by scripts/test.sh)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(cd "${VENV:-$repo/.venv/test}" && pwd)
ansible_test=$VENV/bin/ansible-test
[[ -x $ansible_test ]] || { echo "sanity.sh: $ansible_test not found (set VENV)" >&2; exit 2; }

# Namespace and name come from galaxy.yml.
ns=$(sed -n 's/^namespace:[[:space:]]*//p' "$repo/galaxy.yml" | tr -d "\"' ")
name=$(sed -n 's/^name:[[:space:]]*//p' "$repo/galaxy.yml" | tr -d "\"' ")
build=$repo/.build/sanity
dest=$build/ansible_collections/$ns/$name

# 1. Fresh copy of what git would ship: tracked + untracked-not-ignored files,
#    skipping listed-but-deleted ones.
rm -rf "$build"
mkdir -p "$dest"
(
    cd "$repo"
    git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' f; do
            if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
        done |
        tar --null --no-recursion -T - -cf - |
        tar -xf - -C "$dest"
)
# The copy needs its own git repo: ansible-test walks up to the nearest .git
# (this repo's, which ignores .build/) and would then see no files at all.
git -C "$dest" -c init.defaultBranch=main init -q
echo '/tests/output/' >> "$dest/.git/info/exclude"
git -C "$dest" add -A -f

# 2. Pre-seed ansible-test's get-pip cache with our own offline bootstrapper.
#    ansible-test runs it as `python get_pip_X_Y.py [pip options] pip==X.Y
#    [--no-setuptools] [--no-wheel]` inside a venv made with --without-pip.
at_dir=$("$VENV/bin/python" -c 'import os, ansible_test; print(os.path.dirname(ansible_test.__file__))')
pip_versions=$(grep -ohE "\bpip='[0-9][0-9.]*'" "$at_dir/_internal/python_requirements.py" |
    sed -E "s/pip='(.*)'/\1/" | sort -u || true)
[[ -n $pip_versions ]] || { echo "sanity.sh: cannot find ansible-test's pinned pip version" >&2; exit 2; }

get_pip=$(mktemp)
trap 'rm -f "$get_pip"' EXIT
cat > "$get_pip" <<'PY'
"""Offline pip bootstrap for ansible-test (written by mlinfra.mlhost scripts/sanity.sh).

Stands in for get-pip.py: installs pip from the interpreter's bundled
ensurepip wheels, then uses that pip to install the packages on the command
line (e.g. pip==24.2) from the configured index.
"""
import importlib.util
import subprocess
import sys


def main():
    args = sys.argv[1:]
    no_setuptools = '--no-setuptools' in args
    no_wheel = '--no-wheel' in args
    args = [a for a in args if a not in ('--no-setuptools', '--no-wheel')]
    names = {a.split('=')[0].split('<')[0].split('>')[0].lower() for a in args if not a.startswith('-')}
    had_setuptools = importlib.util.find_spec('setuptools') is not None

    # Bundled pip, no network (ensurepip ignores pip config and env).
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])

    # Like get-pip.py: also install setuptools/wheel unless told not to.
    if not no_setuptools and 'setuptools' not in names:
        args.append('setuptools')
    if not no_wheel and 'wheel' not in names:
        args.append('wheel')
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args)

    # Older ensurepip also brings setuptools; drop it if it was not wanted.
    importlib.invalidate_caches()
    now_setuptools = importlib.util.find_spec('setuptools') is not None
    if no_setuptools and now_setuptools and not had_setuptools and 'setuptools' not in names:
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'])


if __name__ == '__main__':
    main()
PY

cache=${HOME}/.ansible/test/cache
mkdir -p "$cache"
for v in $pip_versions; do
    target=$cache/get_pip_${v//./_}.py
    if ! cmp -s "$get_pip" "$target"; then
        cp "$get_pip" "$target"
        echo "sanity.sh: wrote $target"
    fi
done

# 3. Run the default sanity tests; ansible-test skips Python versions it cannot find.
#    ansible-test passes only PATH and HOME to its children, and pyenv shims of
#    versions not selected are found on PATH but fail when run (ansible-test then
#    aborts). So link every pyenv-installed pythonX.Y that does not already run
#    into a bin folder of our own, put first on PATH.
if command -v pyenv >/dev/null 2>&1 && pyroot=$(pyenv root 2>/dev/null) && [[ -d $pyroot/versions ]]; then
    mkdir -p "$build/bin"
    mapfile -t exes < <(printf '%s\n' "$pyroot"/versions/*/bin/python[23].* | grep -E '/python[23]\.[0-9]+$' | sort -V)
    for exe in "${exes[@]}"; do
        py=${exe##*/}
        if ! "$py" -c '' >/dev/null 2>&1 || [[ -L $build/bin/$py ]]; then
            ln -sfn "$exe" "$build/bin/$py"
        fi
    done
    export PATH=$build/bin:$PATH
fi
cd "$dest"
rc=0
"$ansible_test" sanity --venv --color no "$@" || rc=$?
echo "sanity.sh: ansible-test exited $rc; output under $dest/tests/output"
exit "$rc"
