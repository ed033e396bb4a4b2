# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Draw the fleet-scaling figure of a bench/mlbench.py run: seconds against hosts, first provision and rerun
(median, with min-max bars). Runs in .venv/bench (requirements/bench.txt).

    python bench/plot.py RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path: str, png: str) -> int:
    with open(results_path, encoding="utf-8") as handle:
        res = json.load(handle)
    summary = res["fleet"]["summary"]
    sizes = sorted(summary, key=int)
    hosts = [int(n) for n in sizes]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, label, marker in (("first", "first provision", "o"), ("rerun", "idempotent rerun", "s")):
        med = [summary[n][key]["median"] for n in sizes]
        low = [summary[n][key]["median"] - summary[n][key]["min"] for n in sizes]
        high = [summary[n][key]["max"] - summary[n][key]["median"] for n in sizes]
        ax.errorbar(hosts, med, yerr=[low, high], marker=marker, capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(hosts, [str(h) for h in hosts])
    ax.set_xlabel("hosts (containers, provisioned at once)")
    ax.set_ylabel("seconds (median, min-max)")
    m = res["machine"]
    runs = summary[sizes[0]]["first"]["n"]
    ax.set_title(f"ml_host CPU profile, {m['cpus']} CPUs, {runs} run(s) each", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
