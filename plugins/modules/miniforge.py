#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: miniforge
short_description: Install Miniforge from a checksum-verified installer, with a conda-forge-only .condarc
version_added: 1.0.0
requirements:
  - C(bash) on the managed host to run the installer; the installer brings C(conda) and C(mamba)
description:
  - Installs a Miniforge (or any conda-constructor) installer into O(prefix) in batch mode
    (C(bash installer -b -p prefix)), after copying it beside the prefix and verifying its SHA-256.
  - A wrong checksum fails before the installer runs; a failed install (installer error, conda version not the one
    asked for) removes the prefix it started, so nothing is left behind. A conda base holds its own path in its scripts,
    so it is installed in place, not built under another name and renamed.
  - An existing conda base at O(prefix) is left alone (with O(version), only when it holds that conda version).
  - Writes O(prefix)/.condarc with conda-forge only, strict channel priority, the libmamba solver, no C(defaults)
    (Anaconda's terms), and the mirror, proxy and CA settings given.
  - Shared installs (root-owned under C(/opt), world-readable, never world-writable) and per-user installs
    (run the task as that user, or set O(owner)) both work.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  prefix:
    description:
      - Absolute path of the conda base. System directories and everything below C(/usr), C(/etc) and C(/var/lib)
        (C(/), C(/opt) itself, a home directory itself, C(/usr/local/miniforge3)), a conda install's C(envs/) and paths
        inside another environment are refused, and so are symlinks into them.
      - A prefix the collection installs carries a C(.mlhost-owned) marker; O(state=absent) removes only a marked prefix
        (or one whose C(.condarc) an earlier version of the collection wrote, which is then marked).
    type: path
    required: true
  installer:
    description:
      - The installer, an V(https://), V(http://) or V(file://) URL, or an absolute path on the host.
      - Needed only when O(prefix) holds no conda yet.
      - Never logged (a signed URL carries a token); messages show it masked.
    type: str
  sha256:
    description: The installer's SHA-256 hex digest. Required for any URL; checked for a host path when given.
    type: str
  version:
    description:
      - The conda version the base must hold (as in C(conda-meta/conda-<version>-*.json)), for example V(24.11.3), or
        Miniforge's release name V(25.3.1-0) (its build suffix is ignored). V(latest) and other words are refused.
      - A fresh install that brings another version is removed and fails; an existing base with another version fails
        without change (an installer does not upgrade a base in place).
    type: str
  channels:
    description:
      - The channels of the .condarc, in priority order. C(defaults) and Anaconda's repositories are refused.
      - Each a channel name (V(conda-forge)), an V(https://) URL or a V(file://) path. Never logged (a channel URL may carry a token).
      - Unset is V([conda-forge]).
    type: list
    elements: str
  channel_alias:
    description: Where channel names resolve (a mirror of C(https://conda.anaconda.org)), written as C(channel_alias). Never logged.
    type: str
  custom_channels:
    description:
      - "Channel name to the URL of its parent on a mirror (C(conda-forge: https://mirror.example/conda)), written as C(custom_channels)."
      - Never logged.
    type: dict
  proxy_servers:
    description: Proxies for conda (C(http), C(https) keys), written as C(proxy_servers). May hold credentials; never logged, hidden in the diff.
    type: dict
  ssl_verify:
    description:
      - C(ssl_verify) of the .condarc, and the CA bundle used to download the installer.
      - V(auto) is the host's CA bundle (C(/etc/ssl/certs/ca-certificates.crt) on Debian/Ubuntu,
        C(/etc/pki/tls/certs/ca-bundle.crt) on RHEL), so TLS-intercepting proxies the host trusts work.
        V(true), V(false) or the absolute path of a bundle are written as given.
    type: str
    default: auto
  owner:
    description: Owner of every file of the prefix (a per-user install run as root). Unset leaves files as the installer made them.
    type: str
  group:
    description: Group of every file of the prefix.
    type: str
  mode:
    description: Mode of the prefix directory, as an octal string (V(0755) shared, V(0750) private). World-writable modes are refused.
    type: str
  timeout:
    description: Seconds the installer may run (at least 1).
    type: int
    default: 1800
  state:
    description: V(present), or V(absent) (removes the prefix, only when it is a conda installation the collection made).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the .condarc before and after, proxy values hidden.
notes:
  - The installer is run from a temp file beside O(prefix) and deleted afterwards, whether it succeeded or not.
seealso:
  - module: mlinfra.mlhost.conda_env
  - name: miniforge documentation
    description: Install layout, mirrors and failure behaviour.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/miniforge.md
"""

EXAMPLES = r"""
- name: A shared Miniforge under /opt, verified
  mlinfra.mlhost.miniforge:
    prefix: /opt/miniforge3
    installer: https://github.com/conda-forge/miniforge/releases/download/24.11.3-2/Miniforge3-24.11.3-2-Linux-x86_64.sh
    sha256: "{{ miniforge_sha256 }}"
    version: 24.11.3

- name: Behind a mirror and a proxy
  mlinfra.mlhost.miniforge:
    prefix: /opt/miniforge3
    installer: https://mirror.example.internal/miniforge/Miniforge3-Linux-x86_64.sh
    sha256: "{{ miniforge_sha256 }}"
    custom_channels:
      conda-forge: https://mirror.example.internal/conda
    proxy_servers:
      https: "http://{{ proxy_user }}:{{ proxy_password }}@proxy.example.internal:3128"

- name: A per-user install from a file already on the host
  mlinfra.mlhost.miniforge:
    prefix: /home/alice/miniforge3
    installer: /srv/installers/Miniforge3-Linux-x86_64.sh
    owner: alice
    group: alice
    mode: "0750"
"""

RETURN = r"""
prefix:
  description: The conda base's path.
  type: str
  returned: always
  sample: /opt/miniforge3
conda_version:
  description: The conda version the base holds, read from its conda-meta (null in check mode before an install).
  type: str
  returned: always
  sample: 24.11.3
installed:
  description: Whether this run ran the installer.
  type: bool
  returned: always
  sample: true
installer_sha256:
  description: The verified SHA-256 of the installer that was run.
  type: str
  returned: when the installer ran
  sample: 3c4fbf9c9e5a0d7a7a8d8b4f4d9b36b4a2c8dc1c6c1e8d86c0a0cda5a3fbd1c2
condarc:
  description: The path of the managed .condarc (null with state absent).
  type: str
  returned: always
  sample: /opt/miniforge3/.condarc
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._miniforge import MiniforgeWorker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS

ARGUMENT_SPEC = {
    **PROXY_OPTIONS,
    "prefix": {"type": "path", "required": True},
    "installer": {"type": "str", "no_log": True},
    "sha256": {"type": "str"},
    "version": {"type": "str"},
    # no default here: ansible-core cannot mask a list default of a no_log option; unset is [conda-forge] (the worker's default)
    "channels": {"type": "list", "elements": "str", "no_log": True},
    "channel_alias": {"type": "str", "no_log": True},
    "custom_channels": {"type": "dict", "no_log": True},
    "proxy_servers": {"type": "dict", "no_log": True},
    "ssl_verify": {"type": "str", "default": "auto"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "timeout": {"type": "int", "default": 1800},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, MiniforgeWorker)


if __name__ == "__main__":
    main()
