# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""Draw the fleet figures of a bench/mlbench.py run (each when its part ran): seconds against hosts, first
provision and rerun (median, with min-max bars); and the 32-host rerun against forks, whole run and per host.
Runs in .venv/bench (requirements/bench.txt).

    python bench/plot.py RESULTS.json FLEET.png [FLEET32.png]
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path: str, png: str, png32: str = "") -> int:
    with open(results_path, encoding="utf-8") as handle:
        res = json.load(handle)
    if "fleet" in res:
        fleet(res, png)
    if "fleet32" in res and png32:
        fleet32(res, png32)
    return 0


def fleet32(res: dict, png: str) -> None:
    f = res["fleet32"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    # An earlier run of the same benchmark (another version of the collection), when the results carry one.
    series = [(res["fleet32_before"], "before", "o", "--")] if "fleet32_before" in res else []
    series.append((f, "", "s", "-"))
    for data, what, marker, style in series:
        forks = sorted(data["summary"], key=int)
        xs = [int(k) for k in forks]
        rerun = [data["summary"][k]["rerun"] for k in forks]
        med = [r["median"] for r in rerun]
        label = f"idempotent rerun, {data['hosts']} hosts" + (f" ({what}: {data.get('label', '')})" if what else "")
        ax.errorbar(xs, med, yerr=[[r["median"] - r["min"] for r in rerun], [r["max"] - r["median"] for r in rerun]],
                    marker=marker, linestyle=style, capsize=3, label=label)
        for x, r in zip(xs, rerun):
            ax.annotate(f"{r['median'] / data['hosts']:.2f} s/host", (x, r["median"]), textcoords="offset points",
                        xytext=(6, 6), fontsize=8)
    rerun = [f["summary"][k]["rerun"] for k in sorted(f["summary"], key=int)]
    xs = [int(k) for k in sorted(f["summary"], key=int)]
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("forks")
    ax.set_ylabel("seconds (median, min-max)")
    m = res["machine"]
    ax.set_title(f"{f['hosts']}-host rerun, {m['cpus']} CPUs, {rerun[0]['n']} run(s) each", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)


def fleet(res: dict, png: str) -> None:
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


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
