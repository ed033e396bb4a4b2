#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The main job: provision the hosts of the default inventory (this machine,
# local connection) with playbooks/site.yml. Sets up its own pinned
# ansible-core venv on first use. Extra arguments go to ansible-playbook
# (for example: -i inventory/example --check --diff).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_venv site requirements/site.txt
link_collection
cd "$REPO"
# A role's refused variables as one short line each (plugins/callback/default.py), unless the caller chose a callback.
export ANSIBLE_STDOUT_CALLBACK="${ANSIBLE_STDOUT_CALLBACK:-mlinfra.mlhost.default}"
exec "$REPO/.venv/site/bin/ansible-playbook" playbooks/site.yml "$@"
