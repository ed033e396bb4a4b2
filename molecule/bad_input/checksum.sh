#!/bin/sh
# The host's state as one line per part: package database, held packages,
# apt's configuration and lists, /etc, and the trees where envs, prefixes and
# tools go. A part is a sha256 of a sorted listing (path, type, mode, owner,
# size, mtime, link target) and, for /etc and the dpkg database, of the file
# contents. Ansible's own temporary files (/root/.ansible) are left out.
set -eu
part() { printf '%s %s\n' "$1" "$(sha256sum | cut -d' ' -f1)"; }
sha256sum /var/lib/dpkg/status | part dpkg-status
dpkg --get-selections | part dpkg-selections
apt-mark showhold | part apt-holds
find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum | part etc-contents
listing() {
  find "$@" -xdev -path /root/.ansible -prune -o -printf '%p %y %m %U:%G %s %T@ %l\n' 2>/dev/null | sort
}
listing /etc | part etc-tree
listing /var/lib/dpkg /var/lib/apt | part apt-dpkg-tree
listing /opt /srv /home /root /usr/local | part env-trees
listing /usr | part usr-tree
# The data-loss fixtures (tasks/prepare_ownership.yml), byte for byte, and /var/log's
# own entries and inode (no sizes or times: logs grow; a removal or a swap shows).
find /srv/data /opt/somebody-else-env /opt/foreign-venv /opt/other-conda /var/log/mlhost-keep.log -xdev \
  \( -type f -o -type l \) -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum 2>/dev/null | part fixture-contents
find /srv/data /opt/somebody-else-env /opt/foreign-venv /opt/other-conda -xdev -printf '%p %y %m %l\n' 2>/dev/null | sort | part fixture-tree
find /var/log -maxdepth 1 -printf '%p %y %m %U:%G %i\n' | sort | part var-log-entries
