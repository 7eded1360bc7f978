#!/usr/bin/env python3
"""bench/latency_report.py RESULTS.tsv REQUESTS.tsv -- issue 17's latency
targets from a bench/bench_latency.sh run.

For every N: the no-op pull-all and warm sync-manifests at each delay,
by median and by best run, with the requests each tool made (median); the
round trips each tool waited for one after another (the proxy's delayed
time / the delay: CPU load does not change it); and
  * extra round trips: (time at delay D - time at 0 ms) / D; target for
    the no-op pull-all at 100 ms and N = 300: <= 3;
  * share of a page-after-page listing: tdm's time / the sequential
    listing's time at the same delay -- the curl one (a process per page:
    on a loaded machine process start-up inflates it) and rclone lsf -R
    --fast-list (one process, page after page); target at 100 ms and
    N = 3000: <= 1/8.
"""
import statistics
import sys
from collections import defaultdict


def main():
    t = defaultdict(list)      # (n, delay, tool) -> [secs]
    for line in open(sys.argv[1]):
        p = line.rstrip("\n").split("\t")
        if len(p) < 6 or p[4] != "ok" or not p[0].startswith("no-op N="):
            continue
        n, d = p[0][len("no-op N="):].split(" @")
        t[(int(n), int(d.split()[0]), p[1])].append(float(p[5]))
    reqs = defaultdict(list)
    crit = defaultdict(list)   # (op, tool) -> [delayed ms]
    names = {"pull": "tdm-lua pull-all", "sm": "tdm-lua sync-manifests",
             "rcopy": "rclone copy --checksum (32)",
             "rlsf": "rclone lsf -R --fast-list",
             "pages": "curl ListObjectsV2, page after page"}
    for line in open(sys.argv[2]):
        p = line.rstrip("\n").split("\t")
        op, tool = p[0], names.get(p[1], p[1])
        reqs[(op, tool)].append(int(p[3]))
        if len(p) > 4:
            crit[(op, tool)].append(int(p[4]))
    ns = sorted({k[0] for k in t})
    ds = sorted({k[1] for k in t})
    tools = list(names.values())
    out = []
    for n in ns:
        out.append(f"**N = {n}** ({n * 17} keys): seconds, median / best "
                   "run (requests per run, median)\n")
        out.append("| tool | " + " | ".join(f"{d} ms" for d in ds) + " |")
        out.append("| --- |" + " ---: |" * len(ds))
        for tool in tools:
            cells = []
            for d in ds:
                v = t.get((n, d, tool))
                r = reqs.get((f"no-op N={n} @{d} ms", tool))
                cells.append(f"{statistics.median(v):.2f} / {min(v):.2f}"
                             + (f" ({statistics.median(r):.0f})" if r else "")
                             if v else "")
            out.append(f"| {tool} | " + " | ".join(cells) + " |")
        out.append("")
        page = "curl ListObjectsV2, page after page"
        lsf = "rclone lsf -R --fast-list"
        rows = []
        for tool in tools[:2]:
            for d in ds:
                if d == 0 or not t.get((n, d, tool)) or not t.get((n, 0, tool)):
                    continue
                a, z = t[(n, d, tool)], t[(n, 0, tool)]
                extra_med = (statistics.median(a) - statistics.median(z)) \
                    / (d / 1000)
                extra_best = (min(a) - min(z)) / (d / 1000)
                shares = []
                for ref in (page, lsf):
                    pg = t.get((n, d, ref))
                    shares.append(
                        f"{statistics.median(a) / statistics.median(pg):.3f}"
                        f" / {min(a) / min(pg):.3f}" if pg else "")
                rows.append(f"| {tool} | {d} ms | {extra_med:.1f} / "
                            f"{extra_best:.1f} | " + " | ".join(shares) + " |")
        # Round trips waited for one after another (from the proxy: the
        # time covered by at least one delay / the delay).
        crows = []
        for tool in tools:
            cells = []
            for d in ds:
                c = crit.get((f"no-op N={n} @{d} ms", tool))
                cells.append(f"{statistics.median(c) / d:.1f} "
                             f"({min(c) / d:.1f}–{max(c) / d:.1f})"
                             if c and d else "")
            if any(cells):
                crows.append(f"| {tool} | " + " | ".join(cells) + " |")
        if crows:
            out.append(f"Round trips on the critical path, N = {n} "
                       "(delayed time / delay; median, min–max):\n")
            out.append("| tool | " + " | ".join(f"{d} ms" for d in ds) + " |")
            out.append("| --- |" + " ---: |" * len(ds))
            out.extend(crows)
            out.append("")
        if rows:
            out.append("| N = %d | delay | extra round trips vs 0 ms "
                       "(median / best) | ÷ curl page after page "
                       "(median / best) | ÷ rclone lsf --fast-list "
                       "(median / best) |" % n)
            out.append("| --- | --- | ---: | ---: | ---: |")
            out.extend(rows)
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
