#!/usr/bin/env python3
"""Prints the ratio tables of docs/performance.md from one JMH JSON result file.

Usage: python3 lora-bench/ratios.py [--stat clean|mean|best] [--max-other F] <run>.json

Standard library only. Every ratio divides two times from the same run. The time of a benchmark is
  clean  (default when <run>.cpu exists): the mean of the measurement iterations during which
         other processes used less than F (default 0.10) of the machine's CPU, as recorded by the
         benchmarks in <run>.cpu; a benchmark with no such iteration falls back to the mean of all
         and is marked with '!'.
  mean   JMH's score: the mean of all measurement iterations.
  best   the fastest measurement iteration.
A ratio is left blank when the run lacks one of its two benchmarks (a run filtered to a subset).
"""
import json
import os
import sys

PREFIX = "org.lora4j.bench."


def load_cpu_log(path):
    """(benchmark, d, rank) -> list of other processes' CPU share per measurement iteration, in order."""
    shares = {}
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            bench, params, kind, _index, other, _self = line.rstrip("\n").split("\t")
            if kind != "measurement":
                continue
            p = dict(kv.split("=") for kv in params.split(",") if kv)
            key = (bench.removeprefix(PREFIX), int(p["d"]), int(p["rank"]) if "rank" in p else None)
            shares.setdefault(key, []).append(float(other))
    return shares


def load(path, stat, max_other):
    with open(path) as f:
        runs = json.load(f)
    cpu = load_cpu_log(path.removesuffix(".json") + ".cpu") if stat == "clean" else None
    if stat == "clean" and cpu is None:
        stat = "mean"
    results = {}
    for run in runs:
        name = run["benchmark"].removeprefix(PREFIX)
        params = run.get("params", {})
        key = (name, int(params["d"]), int(params["rank"]) if "rank" in params else None)
        metric = run["primaryMetric"]
        if metric["scoreUnit"] != "ms/op":
            sys.exit(f"{name}: expected ms/op, got {metric['scoreUnit']}")
        iterations = [v for fork in metric.get("rawData", []) for v in fork]
        ms, kept, flag = metric["score"], len(iterations), ""
        if stat == "best" and iterations:
            ms = min(iterations)
        elif stat == "clean":
            others = cpu.get(key, [])
            if len(others) != len(iterations):   # e.g. several forks appended to one log
                flag = "?"
            else:
                clean = [v for v, o in zip(iterations, others) if o < max_other]
                kept = len(clean)
                if clean:
                    ms = sum(clean) / len(clean)
                else:
                    flag = "!"
        results[key] = {
            "ms": ms,
            "mean": metric["score"],
            "err": float(metric["scoreError"]),   # "NaN" with a single iteration
            "kept": kept,
            "n": len(iterations),
            "flag": flag,
            "others": cpu.get(key) if cpu else None,
            "bytes": run.get("secondaryMetrics", {}).get("gc.alloc.rate.norm", {}).get("score"),
        }
    return results, stat


def main(path, stat, max_other):
    res, stat = load(path, stat, max_other)
    dims = sorted({d for (_, d, _) in res})
    ranks = sorted({r for (_, _, r) in res if r is not None})
    described = {
        "clean": f"mean of the iterations in which other processes used < {max_other:.0%} of the CPU",
        "mean": "JMH mean of all measurement iterations",
        "best": "fastest measurement iteration",
    }[stat]
    print(f"Source: {path}; time per benchmark = {described}.\n")

    def get(name, d, rank=None):
        r = res.get((name, d, rank))
        if r is None and rank is None:   # a rank-independent benchmark run at a single rank
            r = next((v for (n, dd, _), v in res.items() if n == name and dd == d), None)
        return r

    def ms(name, d, rank=None):
        r = get(name, d, rank)
        return None if r is None else r["ms"]

    def ratio(num_name, den_name, d, rank=None, den_rank=None):
        num, den = get(num_name, d, rank), get(den_name, d, den_rank)
        if num is None or den is None:
            return ""
        return f"{num['ms'] / den['ms']:.3f}{num['flag']}{den['flag']}"

    def fmt(v):
        return "" if v is None else f"{v:.2f}"

    base, fwd, fwd_copy, plain = ("BaseProductBenchmark.baseProduct", "LoraForwardBenchmark.forwardInPlace",
                                  "LoraForwardBenchmark.forwardCopyingInput", "PlainChainBenchmark.plainChain")
    merged, merged_copy = "MergedForwardBenchmark.mergedInPlace", "MergedForwardBenchmark.mergedCopyingInput"
    two, frozen, full = ("TwoBaseProductsBenchmark.twoBaseProducts", "FrozenForwardBackwardBenchmark.forwardBackward",
                         "FullForwardBackwardBenchmark.forwardBackward")

    print("Forward, against the base product x Wᵀ alone (target: LoRA forward <= 1.05)\n")
    print("| d | rank | base ms | LoRA fwd ms | LoRA fwd / base | LoRA fwd, x copied / base | plain chain / base |")
    print("|---|---|---|---|---|---|---|")
    for d in dims:
        for rank in ranks:
            if get(fwd, d, rank) is None and get(plain, d, rank) is None:
                continue
            print(f"| {d} | {rank} | {fmt(ms(base, d))} | {fmt(ms(fwd, d, rank))} | {ratio(fwd, base, d, rank)} "
                  f"| {ratio(fwd_copy, base, d, rank)} | {ratio(plain, base, d, rank)} |")

    print("\nMerged forward, against the base product (rank-independent, run at one rank)\n")
    print("| d | base ms | merged / base | merged, x copied / base |")
    print("|---|---|---|---|")
    for d in dims:
        print(f"| {d} | {fmt(ms(base, d))} | {ratio(merged, base, d)} | {ratio(merged_copy, base, d)} |")

    print("\nForward + backward, against two base products x Wᵀ and dOut W (target: frozen <= 1.15)\n")
    print("| d | rank | two base ms | frozen LoRA ms | frozen / two base | full, no adapter / two base "
          "| frozen / full |")
    print("|---|---|---|---|---|---|---|")
    for d in dims:
        for rank in ranks:
            if get(frozen, d, rank) is None:
                continue
            print(f"| {d} | {rank} | {fmt(ms(two, d))} | {fmt(ms(frozen, d, rank))} | {ratio(frozen, two, d, rank)} "
                  f"| {ratio(full, two, d)} | {ratio(frozen, full, d, rank)} |")

    print("\nEvery benchmark: time, JMH's mean and error, iterations kept, others' CPU share per "
          "iteration, and Java heap bytes allocated per call (-prof gc: gc.alloc.rate.norm)\n")
    print("| benchmark | d | rank | ms/op used | JMH mean ± 99.9% | kept | others' CPU per iteration | bytes/op |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, d, rank), r in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2] or 0)):
        b = "" if r["bytes"] is None else f"{r['bytes']:.0f}"
        others = "" if not r["others"] else " ".join(f"{o:.2f}" for o in r["others"])
        print(f"| {name} | {d} | {'' if rank is None else rank} | {r['ms']:.3f}{r['flag']} "
              f"| {r['mean']:.3f} ± {r['err']:.3f} | {r['kept']}/{r['n']} | {others} | {b} |")
    if any(r["flag"] for r in res.values()):
        print("\n'!': no iteration ran with the machine to itself; the mean of all iterations is used. "
              "'?': the CPU log does not match the iterations; the mean of all is used.")


if __name__ == "__main__":
    args = sys.argv[1:]
    stat, max_other, files = "clean", 0.10, []
    while args:
        a = args.pop(0)
        if a == "--stat":
            stat = args.pop(0)
        elif a == "--max-other":
            max_other = float(args.pop(0))
        else:
            files.append(a)
    if len(files) != 1 or stat not in ("clean", "mean", "best"):
        sys.exit(__doc__)
    main(files[0], stat, max_other)
