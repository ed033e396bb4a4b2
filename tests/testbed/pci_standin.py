# SPDX-License-Identifier: GPL-3.0-or-later
"""STAND-IN PCI buses of GPU nodes, for containers that must look like one (tests/testbed/testbed.sh standin).

    python3 tests/testbed/pci_standin.py OUTDIR

Writes OUTDIR/<node>/ with the contents of /sys/bus/pci/devices of each of tests/unit/gpu_nodes.py's hand-made
nodes (hgx_h100: 8 x H100 SXM5 and 4 NVSwitches; pcie_l40s; gb200; hgx_b200): per device its vendor, device, class,
subsystem_device, numa_node, driver link, VPD. No GPU node was at hand; these are built from the PCI ids alone
(gpu_nodes.py says where the ids come from). A scenario bind-mounts one read-only over a container's
/sys/bus/pci/devices, so host_facts, nvidia_driver and stack_check read that bus through their real code; nothing
else of a GPU (no driver, no nvidia-smi) comes with it. Rebuilt on every call (it takes milliseconds).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
PREFIX = "sys/bus/pci/devices/"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    out = pathlib.Path(argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        # gpu_nodes imports the test library, which imports the collection as ansible_collections.mlinfra.mlhost.
        link = pathlib.Path(tmp) / "ansible_collections" / "mlinfra" / "mlhost"
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO)
        sys.path[:0] = [tmp, str(REPO / "tests" / "unit")]
        import gpu_nodes  # pylint: disable=import-outside-toplevel
        from mlhost_testlib import build_tree  # pylint: disable=import-outside-toplevel

        for name, make in {**gpu_nodes.NODES, "cpu_only": dict}.items():
            files = {k[len(PREFIX):]: v for k, v in make().items() if k.startswith(PREFIX) and len(k) > len(PREFIX)}
            target = out / name
            staging = out / f".{name}.new"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            build_tree(staging, files)
            for path in [staging, *staging.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
