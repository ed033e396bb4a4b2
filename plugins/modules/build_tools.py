#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: build_tools
short_description: Install a compiler toolchain and development headers under each distribution's own names
version_added: 1.0.0
requirements:
  - apt (C(apt-get), C(dpkg-query)) on Debian and Ubuntu, or dnf (with C(rpm)) on RHEL, Rocky, Alma and Fedora, on the
    managed host
description:
  - Installs what building ML software needs, named by purpose (O(profiles)) rather than by package,
    and resolved to the right packages for Debian 12/13, Ubuntu 22.04/24.04, RHEL/Rocky/Alma/CentOS
    Stream/Oracle Linux 8-10 and Fedora, through apt or dnf.
  - Reads the installed state of every package in one query; when all are installed it changes
    nothing and refreshes no metadata.
  - Before installing, refreshes the package metadata when it is older than O(cache_valid_time), then
    checks that every missing package exists in the configured sources; a missing one fails naming
    it, with nothing installed.
  - Plans before it changes anything; check mode reports the plan and changes nothing, with the same
    C(changed), C(installed), C(removed) and C(plan) as the real run (with apt, the full plan including
    dependencies when package lists are present).
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  profiles:
    description:
      - What to install, by purpose.
      - V(compilers) C, C++ and make (Debian C(build-essential); EL C(gcc), C(gcc-c++), C(make)).
      - V(cmake), V(git); V(download) C(curl), C(wget) and C(ca-certificates).
      - V(python_dev) Python headers (and C(python3-venv) on Debian/Ubuntu, which venvs need).
      - V(ssl_dev) and V(ffi_dev) OpenSSL and libffi headers; V(pkg_config) pkg-config (pkgconf).
      - V(kernel_headers) the headers for the B(running) kernel (C(linux-headers-$(uname -r)),
        C(kernel-devel-$(uname -r))), which DKMS needs to build the NVIDIA module.
    type: list
    elements: str
    choices: [compilers, cmake, git, download, python_dev, ssl_dev, ffi_dev, pkg_config, kernel_headers]
    default: [compilers, cmake, git, download, python_dev, pkg_config]
  extra_packages:
    description: More packages, by their names on the host's distribution.
    type: list
    elements: str
    default: []
  state:
    description: V(present) installs what is missing; V(absent) removes what is installed.
    type: str
    choices: [present, absent]
    default: present
  install_recommends:
    description: With apt, also install recommended packages.
    type: bool
    default: false
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.packages
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows each package's version before and after, and the apt plan under C(prepared).
notes:
  - Needs root (or become) to install.
  - RHEL-family hosts get explicit packages, not the C(Development Tools) group, so the state is exact.
seealso:
  - name: build_tools documentation
    description: Profiles and their package names per distribution.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/build_tools.md
"""

EXAMPLES = r"""
- name: Compilers, CMake, git, curl/wget, Python headers, pkg-config
  mlinfra.mlhost.build_tools:

- name: Everything a source build of a CUDA extension needs, on any supported distro
  mlinfra.mlhost.build_tools:
    profiles: [compilers, cmake, git, python_dev, ssl_dev, ffi_dev, pkg_config, kernel_headers]
    extra_packages: [ninja-build]

- name: Remove the compilers from an inference image
  mlinfra.mlhost.build_tools:
    profiles: [compilers]
    state: absent
"""

RETURN = r"""
pkg_mgr:
  description: The package manager used.
  type: str
  returned: always
  sample: apt
packages:
  description: The package names the profiles and extra_packages resolved to on this host.
  type: list
  elements: str
  returned: always
  sample: [build-essential, cmake, git, curl, wget, ca-certificates, python3-dev, python3-venv, pkgconf]
installed:
  description: The packages this run installs (check mode reports the same list).
  type: list
  elements: str
  returned: always
  sample: [build-essential, cmake]
removed:
  description: The packages this run removes (check mode reports the same list).
  type: list
  elements: str
  returned: always
  sample: []
plan:
  description: With apt, every package the install brings, dependencies included; otherwise the missing packages.
  type: list
  elements: str
  returned: always
  sample: [binutils, gcc-12, g++-12, make, build-essential]
cache_updated:
  description: Whether the package metadata was refreshed.
  type: bool
  returned: always
  sample: false
versions:
  description:
    - Installed version of each package after the run (null when absent).
    - In check mode, a package to install shows the candidate version from the current package lists (null when unknown).
  type: dict
  returned: success
  sample: {build-essential: "12.9", cmake: 3.25.1-1}
commands:
  description: The commands this run ran, in order.
  type: list
  elements: str
  returned: success
  sample: ["/usr/bin/dpkg-query -W -f ${Package}\\t${db:Status-Abbrev}\\t${Version}\\n build-essential cmake"]
distro:
  description: The distribution the names were resolved for.
  type: dict
  returned: success
  sample: {id: debian, version: "12"}
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._build_profiles import PROFILES
from ansible_collections.mlinfra.mlhost.plugins.module_utils._build_tools import BuildTools
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._packages import PACKAGE_MANAGER_OPTIONS
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS

ARGUMENT_SPEC = {
    **PROXY_OPTIONS,
    **PACKAGE_MANAGER_OPTIONS,
    "profiles": {
        "type": "list",
        "elements": "str",
        "choices": list(PROFILES),
        "default": ["compilers", "cmake", "git", "download", "python_dev", "pkg_config"],
    },
    "extra_packages": {"type": "list", "elements": "str", "default": []},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "install_recommends": {"type": "bool", "default": False},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, BuildTools)


if __name__ == "__main__":
    main()
