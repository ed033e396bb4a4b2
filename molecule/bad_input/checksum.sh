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
