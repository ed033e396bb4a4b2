#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mig_layout
short_description: Lay out MIG instances per GPU through NVIDIA's nvidia-mig-manager service
version_added: 1.0.0
requirements:
  - NVIDIA's MIG manager (the C(nvidia-mig-manager) package of NVIDIA/mig-parted, which ships C(nvidia-mig-parted) and
    C(nvidia-mig-manager.service)) on the managed host, and systemd
description:
  - Resolves O(layout) for every GPU in O(gpus) (host_facts' C(gpus), numbered in PCI address order, the order
    C(nvidia-smi) uses by default). The most specific key wins, a PCI address over a PCI device id over a GPU name
    over V(all).
  - "Checks each GPU's layout before anything changes: every profile against the GPU's own (a table from NVIDIA's MIG
    User Guide, checked 2026-12-03, for A100, A800, A30, H100, H100 NVL, H200 and B200), each profile's most
    instances, the GPU's compute and memory slices and its one media-extension instance. A layout for a GPU without
    MIG (an L40S, an RTX 4090) named by its own key is refused; a V(all) layout skips such GPUs. For a GPU that has
    MIG but whose profiles the table does not list (GH200, GB200, B300, RTX PRO 6000 Blackwell) the layout is
    written with a warning and C(nvidia-mig-parted) checks it on the host."
  - Writes the collection's own C(nvidia-mig-parted) config C(/etc/nvidia-mig-manager/mlhost-config.yaml)
    (C(version v1), one config named C(mlhost)) and the drop-in
    C(/etc/systemd/system/nvidia-mig-manager.service.d/zz-mlhost.conf) that points the service at it
    (C(MIG_PARTED_CONFIG_FILE), C(MIG_PARTED_SELECTED_CONFIG)); it sorts after the package's C(override.conf). The
    package's C(config.yaml), C(hooks.yaml) and C(override.conf) are never edited, and a file at either path that
    the collection did not write is refused.
  - The service is enabled, so the layout is applied at every boot before the GPU clients start (the unit runs after
    nvidia-persistenced and the fabric manager and before C(nvidia-gpu-reset.target)).
  - With the driver loaded, C(nvidia-mig-parted assert) tells whether the layout is in place. When it is not, or the
    config changed, the oneshot service is restarted (O(apply)), which applies the layout with NVIDIA's hooks (they
    stop and start the GPU clients around the GPU reset a MIG mode change needs), and the layout is asserted again.
  - Where GPU reset is not available (GPU passthrough), NVIDIA's service reboots the host once to change the MIG mode;
    drain the host first (the ml_host role does, with C(mlhost_drain_command)).
  - After a change, the container toolkit's CDI spec must be regenerated (its device list changes); the ml_host
    role does it.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  layout:
    description:
      - GPU selector to MIG layout. Selectors are V(all), a PCI device id (V(2330) or V(10de:2330)), a GPU name as
        host_facts reports it (V(NVIDIA H100 SXM5 80GB)) or a PCI address (V(0000:17:00.0)); compared without case.
        A selector that is none of these (a misspelt name) is refused.
      - "A layout is V(disabled) (MIG mode off), V(enabled) (MIG mode on, no instances) or a mapping of MIG profile
        to count, for example V({\"3g.40gb\": 2, \"1g.10gb\": 1})."
      - Empty (the default) or a layout that selects no GPU with MIG does nothing and needs no MIG manager.
    type: dict
    default: {}
  gpus:
    description: The host's GPUs, as host_facts returns them (C(ansible_facts.mlhost.gpus)).
    type: list
    elements: dict
    default: []
  require_manager:
    description:
      - Refuse the layout when the MIG manager is not installed. V(false) (the ml_host role's validate phase, when
        an earlier phase installs the package) checks the layout and returns C(state=manager_missing) instead.
    type: bool
    default: true
  apply:
    description:
      - Restart C(nvidia-mig-manager.service) to apply a layout that is not in place now. V(false) only writes the
        files and enables the service, so the layout comes with the next boot.
      - Without a loaded driver the layout is always left for the next boot.
    type: bool
    default: true
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
attributes:
  check_mode:
    support: full
    details: Check mode is the plan (the layout checked, the files that would change, whether the layout is in place).
  diff_mode:
    support: full
    details: The diff shows the config and the drop-in before and after.
notes:
  - Needs root (or become).
  - The layout is verified by C(nvidia-mig-parted assert) here and by M(mlinfra.mlhost.stack_check) (C(nvidia-smi mig
    -lgi)) on every run.
seealso:
  - module: mlinfra.mlhost.host_facts
  - module: mlinfra.mlhost.stack_check
  - name: NVIDIA MIG User Guide
    description: MIG profiles per GPU.
    link: https://docs.nvidia.com/datacenter/tesla/mig-user-guide/
"""

EXAMPLES = r"""
- name: Read the host
  mlinfra.mlhost.host_facts:

- name: Seven 1g.10gb instances on every H100, two 3g.40gb plus one 1g.10gb on the GPU at 0000:9a:00.0
  mlinfra.mlhost.mig_layout:
    gpus: "{{ ansible_facts.mlhost.gpus }}"
    layout:
      "2330": {"1g.10gb": 7}
      "0000:9a:00.0": {"3g.40gb": 2, "1g.10gb": 1}
"""

RETURN = r"""
state:
  description: V(no_layout) (nothing selected), V(manager_missing) (O(require_manager=false) and no MIG manager yet),
    V(applied) (in place), V(written) (files written, applied at the next
    boot) or V(changed) (in check mode, files would change).
  returned: always
  type: str
  sample: applied
layout:
  description: Each GPU index the layout selects, with its layout (V(disabled) or profile counts; V({}) is MIG on
    without instances).
  returned: always
  type: dict
  sample: {"0": {"1g.10gb": 7}, "1": "disabled"}
applied:
  description: Whether C(nvidia-mig-parted assert) found the layout in place; V(null) when it could not be asked (no
    driver loaded, or the files are new in check mode).
  returned: always
  type: bool
  sample: true
config_path:
  description: The collection's nvidia-mig-parted config.
  returned: always
  type: str
  sample: /etc/nvidia-mig-manager/mlhost-config.yaml
dropin_path:
  description: The systemd drop-in that selects it.
  returned: always
  type: str
  sample: /etc/systemd/system/nvidia-mig-manager.service.d/zz-mlhost.conf
mig_instances:
  description: Reserved; V(null). The instances in place are read by M(mlinfra.mlhost.stack_check).
  returned: always
  type: dict
  sample: null
commands:
  description: The commands run.
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/nvidia-mig-parted assert -f /etc/nvidia-mig-manager/mlhost-config.yaml -c mlhost"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._mig import MigLayoutWorker
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module

ARGUMENT_SPEC = {
    "layout": {"type": "dict", "default": {}},
    "gpus": {"type": "list", "elements": "dict", "default": []},
    "require_manager": {"type": "bool", "default": True},
    "apply": {"type": "bool", "default": True},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, MigLayoutWorker)


if __name__ == "__main__":
    main()
