# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Readable names for NVIDIA PCI device ids (vendor 0x10de).

PRIVATE to the collection: no compatibility promise outside it.

Data-center and workstation GPUs that ML hosts carry, checked against the
PCI ID Repository (pci.ids, 2025-06-09 snapshot as packaged by Debian 13).
Devices not listed here are named from the host's own pci.ids when it has
one, else "NVIDIA device 10de:<id>".
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
    "2b85": ("NVIDIA GeForce RTX 5090", "blackwell"),
    "2b87": ("NVIDIA GeForce RTX 5090 D", "blackwell"),
    "2c02": ("NVIDIA GeForce RTX 5080", "blackwell"),
    "2bb1": ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "blackwell"),
    "2bb4": ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "blackwell"),
    "2bb5": ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "blackwell"),
}
