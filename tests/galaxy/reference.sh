#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The collection's reference (one page per module, filter and role, and an index), rendered by
# antsibull-docs from the DOCUMENTATION blocks and meta/argument_specs.yml of an installed copy:
#   bash tests/galaxy/reference.sh COLLECTIONS_PATH DEST
# simplified-rst: plain reStructuredText that GitHub renders, no Sphinx needed. tests/galaxy/check.sh
# compares DEST with the committed docs/reference/.
set -euo pipefail
collections=$1 dest=$2
rm -rf "$dest"
mkdir -p "$dest"
ANSIBLE_COLLECTIONS_PATH="$collections" antsibull-docs collection --use-current --squash-hierarchy \
  --fail-on-error --output-format simplified-rst --no-add-antsibull-docs-version \
  --dest-dir "$dest" mlinfra.mlhost >/dev/null
