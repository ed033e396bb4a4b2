#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cuda_toolkit
short_description: Install a CUDA toolkit the driver can run, and make it the default for login shells
version_added: 1.0.0
requirements:
  - apt (C(apt-get), C(dpkg-query)) on Debian and Ubuntu, or dnf (with C(rpm)) on RHEL, Rocky, Alma and Fedora, on the
    managed host
  - a host C++ compiler for C(nvcc) to compile (the build_tools module's C(compilers) profile)
description:
  - Installs a CUDA toolkit release from the distribution (Debian's and Ubuntu's C(nvidia-cuda-toolkit)) or from NVIDIA's
    CUDA repository (C(cuda-toolkit-X-Y) under C(/usr/local/cuda-X.Y); several releases side by side).
  - Before anything changes, checks the release against NVIDIA's table of minimum drivers with the driver that will run
    it (O(driver_version) when given, the planned driver; else the installed one) and refuses an incompatible pair, naming
    the driver branch it needs and the newest CUDA the driver runs. Unknown releases (there is no CUDA 12.7) are refused.
  - With apt, refuses up front when the disk lacks room for the download and the installed files.
  - With O(set_default), points C(/usr/local/cuda) at the release (or sets the C(cuda) alternative NVIDIA's packages use)
    and writes C(/etc/profile.d/mlhost-cuda.sh) so login shells get C(CUDA_HOME), C(PATH) and C(LD_LIBRARY_PATH).
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  version:
    description:
      - The CUDA release, V(12.4) or V(12.4.1) (the update must exist).
      - A release newer than the collection's compatibility data (a later minor, or a later update of the newest one) is
        left to the package source. With O(source=nvidia_repo) it is installed when the repository offers it, with a
        warning; its minimum driver is not known, so only its major's minor-version floor is checked. A release inside
        the data's range that NVIDIA never released (12.7) is refused.
      - V(auto) takes the distribution's toolkit with O(source=auto) or O(source=distro). With O(source=nvidia_repo) it
        takes the newest release the driver runs, among those the repository offers once its package lists are on the
        host (otherwise the newest in the data).
      - V(auto) never makes an older distribution toolkit the default over a newer one already installed under
        C(/usr/local/cuda-X.Y). With O(set_default=true) that is refused, naming the release to ask for; with
        O(set_default=false) the distribution's toolkit is installed beside it, with a warning.
    type: str
  source:
    description:
      - V(distro) the distribution's C(nvidia-cuda-toolkit) (Debian 12 11.8, Debian 13 12.4, Ubuntu 22.04 11.5, 24.04 12.0);
        V(nvidia_repo) NVIDIA's repository (or O(repo_url)); V(auto) the distribution's when it has that release.
    type: str
    choices: [auto, distro, nvidia_repo]
    default: auto
  driver_version:
    description:
      - The driver that will run the toolkit, when it is not installed yet (a plan), as a full version (V(550.163.01)) or a
        branch (V(550), taken as its newest release). Empty checks against the installed (or loaded) driver.
    type: str
    default: ""
  allow_minor_version_compat:
    description:
      - Accept a driver below the release's minimum but at or above its major's minor-version-compatibility floor
        (12.x runs on 525.60.13 and newer, without the features that need a newer driver).
    type: bool
    default: false
  set_default:
    description: Make this release the default (C(/usr/local/cuda) and C(/etc/profile.d/mlhost-cuda.sh)).
    type: bool
    default: true
  check_space:
    description: With apt, ask apt for the download and installed sizes and refuse when the disk lacks room.
    type: bool
    default: true
  state:
    description: V(present) installs; V(absent) removes the release's packages (and the default link and profile when they point at it).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.nvidia_repo
  - mlinfra.mlhost.packages
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the sources and the profile script written or removed.
notes:
  - Needs root (or become).
seealso:
  - module: mlinfra.mlhost.nvidia_driver
  - name: Compatibility data
    description: CUDA releases and the drivers they need.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/compatibility.md
"""

EXAMPLES = r"""
- name: Debian 12's CUDA 11.8 (checked against the installed driver)
  mlinfra.mlhost.cuda_toolkit:
    version: "11.8"

- name: CUDA 12.4 from NVIDIA's repository, for a driver that the same play installs next
  mlinfra.mlhost.cuda_toolkit:
    version: "12.4"
    source: nvidia_repo
    driver_version: "550"
    repo_key: /etc/mlhost/keys/nvidia-cuda.pub
"""

RETURN = r"""
version:
  description: The CUDA release (major.minor).
  type: str
  returned: success
  sample: "12.4"
full_version:
  description: The installed toolkit's full version, when installed.
  type: str
  returned: success
  sample: 12.4.131
path:
  description: Where the toolkit lives.
  type: str
  returned: success
  sample: /usr/local/cuda-12.4
nvcc:
  description: The toolkit's nvcc.
  type: str
  returned: success
  sample: /usr/local/cuda-12.4/bin/nvcc
min_driver:
  description: The minimum driver this release needs (NVIDIA's table); null for a release newer than the data.
  type: str
  returned: success
  sample: 550.54.14
compatible:
  description: Whether the driver checked runs this release (null when there is no driver to check).
  type: bool
  returned: success
  sample: true
driver_version:
  description: The driver checked against.
  type: str
  returned: success
  sample: 550.163.01
driver_origin:
  description: Where that driver came from (V(planned), V(installed), V(loaded), V(none)).
  type: str
  returned: success
  sample: installed
source:
  description: The source used.
  type: str
  returned: success
  sample: distro
packages:
  description: The toolkit's packages.
  type: list
  elements: str
  returned: success
  sample: [nvidia-cuda-toolkit]
default:
  description: Whether this release was made the default.
  type: bool
  returned: success
  sample: true
actions:
  description: The plan's steps, in order; the same in check mode and in the run that carries them out.
  type: list
  elements: str
  returned: success
  sample: ["refresh the package lists when older than 86400 s", "install nvidia-cuda-toolkit", "write /etc/profile.d/mlhost-cuda.sh"]
source_reason:
  description: Why that source was used (with O(source=auto), which source it chose and why).
  type: str
  returned: success
  sample: Debian 13 carries CUDA 12.4, the release asked
repo_key_fingerprints:
  description:
    - The fingerprints of the keys in the repository key file the package source trusts, after they were checked
      (NVIDIA's repository); empty for the distribution's own sources.
  type: list
  elements: str
  returned: success
  sample: [EB693B3035CD5710E231E123A4B469963BF863CC]
pkg_mgr:
  description: The package manager used.
  type: str
  returned: success
  sample: apt
commands:
  description: The commands this run ran, in order.
  type: list
  elements: str
  returned: success
  sample: ["/usr/bin/dpkg-query -W -f ... nvidia-cuda-toolkit"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._cuda_toolkit import Toolkit
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_repo import PACKAGE_OPTIONS, REPO_OPTIONS

ARGUMENT_SPEC = {
    "version": {"type": "str"},
    "source": {"type": "str", "choices": ["auto", "distro", "nvidia_repo"], "default": "auto"},
    "driver_version": {"type": "str", "default": ""},
    "allow_minor_version_compat": {"type": "bool", "default": False},
    "set_default": {"type": "bool", "default": True},
    "check_space": {"type": "bool", "default": True},
    **REPO_OPTIONS,
    **PACKAGE_OPTIONS,
}


def main() -> None:
    run_module(ARGUMENT_SPEC, Toolkit)


if __name__ == "__main__":
    main()
