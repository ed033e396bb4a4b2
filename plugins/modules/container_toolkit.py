#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_toolkit
short_description: Install NVIDIA's container toolkit, configure Docker, containerd and Podman for it, and keep the CDI spec current
version_added: 1.0.0
requirements:
  - apt (C(apt-get), C(dpkg-query)) on Debian and Ubuntu, or dnf (with C(rpm)) on RHEL, Rocky, Alma and Fedora, on the
    managed host
  - the container engines named in O(runtimes), installed (the ml_host role installs Debian's C(docker.io) with
    C(mlhost_docker))
description:
  - Installs C(nvidia-container-toolkit) and the packages it comes with (C(nvidia-container-toolkit-base),
    C(libnvidia-container-tools), C(libnvidia-container1)) from NVIDIA's CUDA repository, which carries the toolkit
    since 1.13, or a mirror of it (O(repo_url)). The repository is configured exactly as M(mlinfra.mlhost.nvidia_driver)
    and M(mlinfra.mlhost.cuda_toolkit) do it (the same files, its own C(Signed-By) keyring, the key checked by
    fingerprint), so the three modules share one source. With O(version) the four packages are installed at exactly
    that version; with O(hold) they are held (apt-mark hold, dnf versionlock), and released and held again around a
    version change.
  - "Docker: C(/etc/docker/daemon.json) is parsed and merged, never overwritten: the runtime C(nvidia)
    (C({\"path\": \"nvidia-container-runtime\", \"args\": []})) is added under C(runtimes), and with O(cdi) on Docker 25
    and later C(features.cdi) is set to true; every other key is kept. A file that is not valid JSON (comments,
    trailing commas, a key twice), a C(runtimes.nvidia) the collection did not write, or C(features.cdi) set to false
    while O(cdi) is true are refused with the fix, before anything changes. The merged file is checked by
    C(dockerd --validate) (Docker 23 and later) before it replaces the old one; docker is restarted only when the file
    changed and the service is active (O(restart))."
  - "containerd: the drop-in C(/etc/containerd/conf.d/99-mlhost-nvidia.toml) in the config version the installed
    containerd reads (C(containerd --version); 1.x reads version 2 with the runtimes under
    C(plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes), 2.x version 3 under
    C(plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes)), since a drop-in of the wrong version stops
    containerd. With O(cdi) on containerd 1.7 and later it sets C(enable_cdi). The main C(/etc/containerd/config.toml)
    must import C(/etc/containerd/conf.d/*.toml): when it is absent the module writes its own (marked) one; when it is
    the containerd package's own file unchanged (Debian ships one without imports; its checksum matches dpkg's record)
    the module replaces it by a marked file holding the imports line above the package's file verbatim (removed again
    with O(state=absent)); an administrator's file without the import is refused, naming the line to add, and never
    edited. C(containerd --config /etc/containerd/config.toml config dump) must load the result and list the runtime
    before containerd is restarted (only when a file changed and the service is active); otherwise the previous files
    are put back."
  - Podman needs no configuration file; it reads CDI specs (Podman 4.1 and later), so O(cdi) must be true for it.
  - "CDI: where the NVIDIA driver is loaded (C(nvidia-smi -L) answers) the spec O(cdi_spec) is generated with
    C(nvidia-ctk cdi generate) and what it was generated for is recorded beside it in O(cdi_spec)C(.mlhost-state) (the
    driver version, the GPUs and MIG devices C(nvidia-smi -L) lists, the hash of the collection's MIG layout config
    C(/etc/nvidia-mig-manager/mlhost-config.yaml) and the toolkit's version); it is generated again when any of these
    changes. Where the driver is not loaded (a container, a reboot pending after the driver install) generation is
    skipped with a warning, and the next run (or NVIDIA's refresh unit at boot) generates it."
  - Where the toolkit ships NVIDIA's C(nvidia-cdi-refresh.path) and C(nvidia-cdi-refresh.service) (1.18 and later), a
    drop-in C(/etc/systemd/system/nvidia-cdi-refresh.service.d/zz-mlhost.conf) points them at O(cdi_spec) (they write
    C(/var/run/cdi/nvidia.yaml) by default, and CDI drops the devices that two specs both claim) and the units are
    enabled, so the spec is regenerated at boot and when the driver changes. Another NVIDIA spec in C(/etc/cdi) or
    C(/var/run/cdi) is reported in a warning.
  - A CDI spec at O(cdi_spec) that the collection did not generate (no record beside it) is refused, not overwritten.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  runtimes:
    description:
      - The container engines to configure, any of V(docker), V(containerd) and V(podman). Empty installs the toolkit
        (and the CDI spec) only.
      - Each engine must be installed (see O(require_engines)).
    type: list
    elements: str
    choices: [docker, containerd, podman]
    default: []
  cdi:
    description:
      - Generate and keep the CDI spec, and turn on CDI in Docker (25 and later) and containerd (1.7 and later), so that
        containers ask for GPUs with C(--device nvidia.com/gpu=all). V(false) removes the spec the collection generated.
    type: bool
    default: true
  cdi_spec:
    description:
      - Where the CDI spec is written; an absolute path of letters, digits and C(._-) ending in C(.yaml) or C(.json).
        Container engines read C(/etc/cdi) and C(/var/run/cdi).
    type: str
    default: /etc/cdi/nvidia.yaml
  source:
    description:
      - V(nvidia_repo) NVIDIA's CUDA repository for this distribution, or the mirror O(repo_url) (the repository options
        below); V(preinstalled) installs nothing and configures the toolkit already installed (refused when it is not).
    type: str
    choices: [nvidia_repo, preinstalled]
    default: nvidia_repo
  version:
    description:
      - The toolkit's exact package version with its revision, as the repository lists it (V(1.18.0-1)); all four
        packages are installed at it. Empty installs the newest the source offers when the toolkit is missing, and
        leaves an installed one as it is.
    type: str
    default: ""
  hold:
    description: Hold the four packages at their version (apt-mark hold, dnf versionlock).
    type: bool
    default: true
  restart:
    description:
      - Restart docker and containerd after their configuration changed, when the service is active. V(false) leaves the
        restart to the administrator (running containers stop with a restart unless Docker's live-restore is on).
    type: bool
    default: true
  require_engines:
    description:
      - Refuse an engine in O(runtimes) that is not installed. V(false) (the ml_host role's validate phase, when an
        earlier phase installs Docker) plans the rest and warns.
    type: bool
    default: true
  state:
    description:
      - V(present) installs and configures; V(absent) removes the collection's configuration (the C(nvidia) runtime
        from daemon.json, the containerd drop-in and the main config the module wrote, giving back the package's, the
        CDI spec and its record, the refresh drop-in), then unholds and removes the packages. C(features.cdi) stays.
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
    details: Check mode is the plan (packages, files, validation and restarts that would happen; no command that changes anything).
  diff_mode:
    support: full
    details: The diff shows daemon.json, the containerd files, the package sources and the CDI record before and after.
notes:
  - Needs root (or become).
  - "The collection never sets the C(nvidia) runtime as Docker's or containerd's default runtime; containers ask for
    GPUs with CDI (C(--device nvidia.com/gpu=all)) or C(--runtime=nvidia), Kubernetes pods with
    C(runtimeClassName: nvidia)."
  - containerd merges an imported file one level below the plugin, so a drop-in that names the CRI plugin's
    C(containerd) table replaces the whole table (the snapshotter, the default runtime, runc and its options; seen with
    Debian 13's containerd 1.7.24). The drop-in therefore carries that table as C(containerd config dump) shows it
    before the change, plus the C(nvidia) runtime, which gets runc's C(SystemdCgroup = true) where runc has it. Settings
    of that table changed in the main config after the first run are overridden by the drop-in; change them there
    before, or remove the drop-in and rerun.
seealso:
  - module: mlinfra.mlhost.nvidia_driver
  - module: mlinfra.mlhost.mig_layout
  - name: NVIDIA Container Toolkit
    description: Installing the toolkit, configuring runtimes, CDI.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/
"""

EXAMPLES = r"""
- name: The toolkit 1.18.0-1 from NVIDIA's CUDA repository, held, for Docker and Podman, with a CDI spec
  mlinfra.mlhost.container_toolkit:
    version: 1.18.0-1
    runtimes: [docker, podman]

- name: containerd on a Kubernetes node, from a mirror of NVIDIA's repository
  mlinfra.mlhost.container_toolkit:
    runtimes: [containerd]
    repo_url: https://mirror.example.com/nvidia/cuda/debian12/x86_64/
"""

RETURN = r"""
installed_version:
  description: The installed version of C(nvidia-container-toolkit) (after the run; before it in check mode); null when absent.
  type: str
  returned: always
  sample: 1.18.0-1
version:
  description: The version asked, or the installed one when none was asked.
  type: str
  returned: always
  sample: 1.18.0-1
held:
  description: The toolkit's packages that are held.
  type: list
  elements: str
  returned: always
  sample: [libnvidia-container-tools, libnvidia-container1, nvidia-container-toolkit, nvidia-container-toolkit-base]
engines:
  description: Each engine of O(runtimes) with its version and whether it is installed.
  type: dict
  returned: always
  sample: {"docker": {"version": "26.1.5", "installed": true}, "containerd": {"version": "1.7.24", "installed": true}}
cdi:
  description:
    - The CDI spec's state, V(generated) (now, or in check mode would be), V(current) (generated for what the host has),
      V(skipped) (no driver loaded), V(disabled) (O(cdi=false)) or V(absent); C(spec) its path and C(generated_for)
      the record (driver, gpus_sha256, mig_config_sha256, toolkit).
  type: dict
  returned: always
  sample: {"state": "current", "spec": "/etc/cdi/nvidia.yaml", "generated_for": {"driver": "580.95.05", "toolkit": "1.18.0-1"}}
cdi_spec:
  description: The CDI spec's path.
  type: str
  returned: always
  sample: /etc/cdi/nvidia.yaml
actions:
  description: The plan's steps, in order; the same in check mode and in the run that carries them out.
  type: list
  elements: str
  returned: always
  sample: ["install nvidia-container-toolkit=1.18.0-1", "merge the nvidia runtime into /etc/docker/daemon.json"]
repo_key_fingerprints:
  description: The fingerprints of the repository key, checked (O(source=nvidia_repo)).
  type: list
  elements: str
  returned: always
  sample: [EB693B3035CD5710E231E123A4B469963BF863CC]
pkg_mgr:
  description: The package manager used.
  type: str
  returned: always
  sample: apt
commands:
  description: The commands this run ran, in order.
  type: list
  elements: str
  returned: always
  sample: ["/usr/bin/dockerd --version"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._container_toolkit import ContainerToolkit
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._nvidia_repo import PACKAGE_OPTIONS, REPO_OPTIONS

ARGUMENT_SPEC = {
    "runtimes": {"type": "list", "elements": "str", "choices": ["docker", "containerd", "podman"], "default": []},
    "cdi": {"type": "bool", "default": True},
    "cdi_spec": {"type": "str", "default": "/etc/cdi/nvidia.yaml"},
    "source": {"type": "str", "choices": ["nvidia_repo", "preinstalled"], "default": "nvidia_repo"},
    "version": {"type": "str", "default": ""},
    "hold": {"type": "bool", "default": True},
    "restart": {"type": "bool", "default": True},
    "require_engines": {"type": "bool", "default": True},
    **REPO_OPTIONS,
    **PACKAGE_OPTIONS,
}


def main() -> None:
    run_module(ARGUMENT_SPEC, ContainerToolkit)


if __name__ == "__main__":
    main()
