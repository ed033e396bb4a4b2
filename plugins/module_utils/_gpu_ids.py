# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Readable names for NVIDIA PCI device ids (vendor 0x10de).

PRIVATE to the collection: no compatibility promise outside it.

Data-center and workstation GPUs that ML hosts carry, checked against the
PCI ID Repository (pci.ids, 2025-06-09 snapshot as packaged by Debian 13).
Devices not listed here are named from the host's own pci.ids when it has
one, else "NVIDIA device 10de:<id>".

Beside the names: each GPU's form factor (``GPU_FORM_FACTORS``), compute
capability (``GPU_COMPUTE_CAPABILITIES``) and the NVSwitch generations' PCI
ids (``NVSWITCHES``), each table with where and when it was checked.
"""

from __future__ import annotations

# device id (lower-case hex) -> (name, architecture)
NVIDIA_GPUS: dict[str, tuple[str, str]] = {
    # Maxwell and Pascal (the branches after R580 no longer support them, nor Volta): checked against Debian 12's
    # pci.ids package (0.0~2023.04.11-1).
    "13bd": ("NVIDIA Tesla M10", "maxwell"),
    "13f2": ("NVIDIA Tesla M60", "maxwell"),
    "17fd": ("NVIDIA Tesla M40", "maxwell"),
    "15f7": ("NVIDIA Tesla P100 PCIe 12GB", "pascal"),
    "15f8": ("NVIDIA Tesla P100 PCIe 16GB", "pascal"),
    "15f9": ("NVIDIA Tesla P100 SXM2 16GB", "pascal"),
    "1b38": ("NVIDIA Tesla P40", "pascal"),
    "1bb3": ("NVIDIA Tesla P4", "pascal"),
    "1b06": ("NVIDIA GeForce GTX 1080 Ti", "pascal"),
    "1b80": ("NVIDIA GeForce GTX 1080", "pascal"),
    # Volta
    "1db1": ("NVIDIA Tesla V100 SXM2 16GB", "volta"),
    "1db4": ("NVIDIA Tesla V100 PCIe 16GB", "volta"),
    "1db5": ("NVIDIA Tesla V100 SXM2 32GB", "volta"),
    "1db6": ("NVIDIA Tesla V100 PCIe 32GB", "volta"),
    "1db8": ("NVIDIA Tesla V100 SXM3 32GB", "volta"),
    "1df5": ("NVIDIA Tesla V100 SXM2 16GB", "volta"),
    "1df6": ("NVIDIA Tesla V100S PCIe 32GB", "volta"),
    # Turing
    "1eb8": ("NVIDIA Tesla T4", "turing"),
    "1e04": ("NVIDIA GeForce RTX 2080 Ti", "turing"),
    "1e07": ("NVIDIA GeForce RTX 2080 Ti Rev. A", "turing"),
    "1e30": ("NVIDIA Quadro RTX 6000/8000", "turing"),
    "1e36": ("NVIDIA Quadro RTX 6000", "turing"),
    "1e78": ("NVIDIA Quadro RTX 6000/8000", "turing"),
    # Ampere
    "20b0": ("NVIDIA A100 SXM4 40GB", "ampere"),
    "20b1": ("NVIDIA A100 PCIe 40GB", "ampere"),
    "20b2": ("NVIDIA A100 SXM4 80GB", "ampere"),
    "20b3": ("NVIDIA A100 SXM 64GB", "ampere"),
    "20b5": ("NVIDIA A100 PCIe 80GB", "ampere"),
    "20b7": ("NVIDIA A30", "ampere"),
    "20b8": ("NVIDIA A100X", "ampere"),
    "20b9": ("NVIDIA A30X", "ampere"),
    "20bd": ("NVIDIA A800 SXM4 40GB", "ampere"),
    "20f1": ("NVIDIA A100 PCIe 40GB", "ampere"),
    "20f3": ("NVIDIA A800 SXM4 80GB", "ampere"),
    "20f5": ("NVIDIA A800 80GB PCIe", "ampere"),
    "20f6": ("NVIDIA A800 40GB PCIe", "ampere"),
    "2230": ("NVIDIA RTX A6000", "ampere"),
    "2231": ("NVIDIA RTX A5000", "ampere"),
    "2235": ("NVIDIA A40", "ampere"),
    "2236": ("NVIDIA A10", "ampere"),
    "2237": ("NVIDIA A10G", "ampere"),
    "24b0": ("NVIDIA RTX A4000", "ampere"),
    "25b6": ("NVIDIA A2 / A16", "ampere"),
    "2203": ("NVIDIA GeForce RTX 3090 Ti", "ampere"),
    "2204": ("NVIDIA GeForce RTX 3090", "ampere"),
    # Ada Lovelace
    "2684": ("NVIDIA GeForce RTX 4090", "ada"),
    "2685": ("NVIDIA GeForce RTX 4090 D", "ada"),
    "2704": ("NVIDIA GeForce RTX 4080", "ada"),
    "2702": ("NVIDIA GeForce RTX 4080 SUPER", "ada"),
    "26b1": ("NVIDIA RTX 6000 Ada Generation", "ada"),
    "26b5": ("NVIDIA L40", "ada"),
    "26b9": ("NVIDIA L40S", "ada"),
    "26ba": ("NVIDIA L20", "ada"),
    "27b8": ("NVIDIA L4", "ada"),
    # Hopper
    "2321": ("NVIDIA H100 NVL", "hopper"),
    "2322": ("NVIDIA H800 PCIe", "hopper"),
    "2324": ("NVIDIA H800", "hopper"),
    "2329": ("NVIDIA H20", "hopper"),
    "2330": ("NVIDIA H100 SXM5 80GB", "hopper"),
    "2331": ("NVIDIA H100 PCIe", "hopper"),
    "2335": ("NVIDIA H200 SXM 141GB", "hopper"),
    "2336": ("NVIDIA H100", "hopper"),
    "2339": ("NVIDIA H100 SXM5 94GB", "hopper"),
    "233b": ("NVIDIA H200 NVL", "hopper"),
    "233d": ("NVIDIA H100 96GB", "hopper"),
    "2342": ("NVIDIA GH200 120GB / 480GB", "hopper"),
    "2348": ("NVIDIA GH200 144GB HBM3e", "hopper"),
    # Blackwell
    "2901": ("NVIDIA B200", "blackwell"),
    "2941": ("NVIDIA GB200", "blackwell"),
    "29bc": ("NVIDIA B100", "blackwell"),
    # B300: not in pci.ids 2025.06.09. 10de:3182 is the id AWS ParallelCluster's cookbook counts on its B300
    # instances (aws/aws-parallelcluster-cookbook#3101, "tested lspci -d 10de:3182", 2026-01-23), inside the GB110 range
    # 0x3180-0x31ff of NVIDIA's gpu-admin-tools (gpu/devid_chips.py). GB300's PCI id could not be confirmed anywhere
    # (checked 2026-12-03): it is left out, and a GB300 is named from the host's pci.ids or as "NVIDIA device 10de:<id>".
    "3182": ("NVIDIA B300", "blackwell"),
    "2b85": ("NVIDIA GeForce RTX 5090", "blackwell"),
    "2b87": ("NVIDIA GeForce RTX 5090 D", "blackwell"),
    "2c02": ("NVIDIA GeForce RTX 5080", "blackwell"),
    "2bb1": ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "blackwell"),
    "2bb4": ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "blackwell"),
    "2bb5": ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "blackwell"),
}


GPU_DATA_CHECKED = "2026-12-03"

# Form factor of each GPU above: pcie (a card), sxm (an SXM module on an HGX/DGX baseboard; NVLink to its peers,
# through NVSwitches on 8-GPU boards) or superchip (a Grace CPU and the GPU on one module, NVLink-C2C between them:
# GH200, GB200). Taken from the product name pci.ids gives (2025.06.09 snapshot) and NVIDIA's product pages; an id
# whose name does not say it (H800 2324, H20 2329, H100 2336 and 233d) has none, and host_facts says null for it.
# H100 NVL and H200 NVL are PCIe cards (NVLink bridges between pairs); A100X/A30X are PCIe converged cards.
_PCIE = ("13bd 13f2 17fd 15f7 15f8 1b38 1bb3 1b06 1b80 1db4 1db6 1df6 1eb8 1e04 1e07 1e30 1e36 1e78 20b1 20b5 20b7 "
         "20b8 20b9 20f1 20f5 20f6 2230 2231 2235 2236 2237 24b0 25b6 2203 2204 2684 2685 2704 2702 26b1 26b5 26b9 "
         "26ba 27b8 2321 2322 2331 233b 2b85 2b87 2c02 2bb1 2bb4 2bb5")
_SXM = "15f9 1db1 1db5 1db8 1df5 20b0 20b2 20b3 20bd 20f3 2330 2335 2339 2901 29bc 3182"
_SUPERCHIP = "2342 2348 2941"
GPU_FORM_FACTORS: dict[str, str] = {
    **{device: "pcie" for device in _PCIE.split()},
    **{device: "sxm" for device in _SXM.split()},
    **{device: "superchip" for device in _SUPERCHIP.split()},
}

# Compute capability of each GPU above, from NVIDIA's "CUDA GPU Compute Capability" page
# (https://developer.nvidia.com/cuda-gpus) and its legacy page (https://developer.nvidia.com/cuda-legacy-gpus), read
# 2026-12-03: 12.0 RTX PRO 6000 Blackwell and GeForce RTX 50; 10.3 B300/GB300; 10.0 B200/GB200; 9.0 H100/H200/GH200;
# 8.9 L4/L40/L40S/RTX 6000 Ada/GeForce RTX 40; 8.6 A40/A10/A16/A2/RTX A6000/A5000/A4000/GeForce RTX 30; 8.0 A100/A30;
# 7.5 T4/Quadro RTX/GeForce RTX 20; 7.0 V100; 6.1 P40/P4/GTX 10; 6.0 P100; 5.2 M60/M40. Not on those pages, by chip:
# B100 (GB100, as B200) 10.0, A800 and A100X (GA100) 8.0, A30X (GA100) 8.0, A10G (GA102) 8.6, L20 (AD102) 8.9,
# H800/H20 (GH100) 9.0, Tesla M10 (GM107, as the Quadro K2200 the legacy page lists) 5.0.
_CC = {
    "12.0": "2b85 2b87 2c02 2bb1 2bb4 2bb5",
    "10.3": "3182",
    "10.0": "2901 2941 29bc",
    "9.0": "2321 2322 2324 2329 2330 2331 2335 2336 2339 233b 233d 2342 2348",
    "8.9": "2684 2685 2704 2702 26b1 26b5 26b9 26ba 27b8",
    "8.6": "2230 2231 2235 2236 2237 24b0 25b6 2203 2204",
    "8.0": "20b0 20b1 20b2 20b3 20b5 20b7 20b8 20b9 20bd 20f1 20f3 20f5 20f6",
    "7.5": "1eb8 1e04 1e07 1e30 1e36 1e78",
    "7.0": "1db1 1db4 1db5 1db6 1db8 1df5 1df6",
    "6.1": "1b38 1bb3 1b06 1b80",
    "6.0": "15f7 15f8 15f9",
    "5.2": "13f2 17fd",
    "5.0": "13bd",
}
GPU_COMPUTE_CAPABILITIES: dict[str, str] = {device: cc for cc, devices in _CC.items() for device in devices.split()}

# NVLink generation of the GPUs of an architecture where they sit on an SXM baseboard or a superchip (NVIDIA's NVLink
# pages: P100 NVLink 1, V100 2, A100 3, H100 4, Blackwell 5). PCIe cards with NVLink bridges are not counted.
ARCHITECTURE_NVLINK: dict[str, int] = {"pascal": 1, "volta": 2, "ampere": 3, "hopper": 4, "blackwell": 5}

# NVSwitches on the host's PCI bus (vendor 0x10de, class 0x0680 "bridge, other", the class NVIDIA's gpu-admin-tools
# looks for): device id -> (NVSwitch generation, NVLink generation, function). Checked 2026-12-03 against NVIDIA's
# open-gpu-kernel-modules, src/common/nvswitch/kernel/nvswitch.c (nvswitch_lr10_device_ids, nvswitch_ls10_device_ids),
# and pci.ids 2025.06.09 (1af1 "GA100 [A100 NVSwitch]", 22a3 "GH100 [H100 NVSwitch]"; Debian 12's 2023.04.10 snapshot
# has 1af1 only).
#   - 2nd generation, LR10 (HGX A100, NVLink 3): 1ae8, 1af0-1aff.
#   - 3rd generation, LS10 "Laguna" (HGX H100/H200, NVLink 4): 22a0-22a7 are the switch's management endpoint; 22a8-22ab
#     its PCI-PCI bridge function and 22ac-22af its non-transparent bridge function, counted with their switch, not as
#     switches of their own ("bridge").
#   - 1st generation (DGX-2/HGX-2 with V100, NVLink 2): its ids are neither in pci.ids nor in the open driver (which
#     drives LR10 and LS10 only), so none is listed; such a switch is still counted, with a null generation.
#   - 4th generation (HGX B100/B200/B300, NVLink 5): not an NVIDIA PCI function on the host. Its management port is a
#     ConnectX function (vendor 0x15b3) whose VPD carries SW_MNG; that is how NVIDIA's gpu-driver-container
#     (_assert_nvlink5_system) and Fabric Manager's start script tell an NVLink 5 system, and what NVLSM binds to.
NVSWITCH_SWITCH = "switch"
NVSWITCH_BRIDGE = "bridge"
NVSWITCHES: dict[str, tuple[int, int, str]] = {
    "1ae8": (2, 3, NVSWITCH_SWITCH),
    **{f"1af{d}": (2, 3, NVSWITCH_SWITCH) for d in "0123456789abcdef"},
    **{f"22a{d}": (3, 4, NVSWITCH_SWITCH) for d in "01234567"},
    **{f"22a{d}": (3, 4, NVSWITCH_BRIDGE) for d in "89abcdef"},
}
NVSWITCH_NAMES: dict[int, str] = {2: "NVIDIA NVSwitch (2nd generation, LR10)", 3: "NVIDIA NVSwitch (3rd generation, LS10)"}
