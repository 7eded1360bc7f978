#!/usr/bin/env python3
"""bench/report.py RESULTS.tsv -- Markdown tables from bench/lib.sh rows.

Rows: op tool role run status seconds bytes files srv_cpu_pct rss_kb note
(role: tdm, peer or ref). For each operation, one line per tool: runs,
median and min-max wall time, throughput, time per file, the s3rver CPU
(median, % of one core) and, on tdm's line, the speed ratio to the best
peer = (best peer's median time) / (tdm's median time), so > 1 means tdm
is faster, and beside it the same by best run (that peer's fastest run /
tdm's fastest run); "ref" rows (the server ceiling, openssl speed) are not peers
and get their own ratio column. Peak-RSS rows go to a second table.
"""
import statistics
import sys
from collections import OrderedDict


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 12:
                p += [""] * (12 - len(p))
            rows.append(dict(zip(["op", "tool", "role", "run", "status",
                                  "secs", "bytes", "files", "cpu", "rss",
                                  "note", "ucpu"], p)))
    return rows


def group(rows, rss):
    """Rows by op then (tool, role); peak-RSS ops are named "rss ..."."""
    ops = OrderedDict()
    for r in rows:
        if r["op"].startswith("rss ") != rss:
            continue
        ops.setdefault(r["op"], OrderedDict()).setdefault(
            (r["tool"], r["role"]), []).append(r)
    return ops


def fnum(x, nd=2):
    return f"{x:.{nd}f}"


def summary(runs):
    ok = [r for r in runs if r["status"] == "ok"]
    s = {"n": len(runs), "ok": len(ok), "note": runs[0]["note"],
         "status": runs[0]["status"]}
    if ok:
        t = [float(r["secs"]) for r in ok]
        s.update(med=statistics.median(t), lo=min(t), hi=max(t))
        b = ok[0]["bytes"]
        s["bytes"] = int(b) if b else None
        fl = ok[0]["files"]
        s["files"] = int(fl) if fl else None
        cpu = [float(r["cpu"]) for r in ok if r["cpu"] != ""]
        s["cpu"] = statistics.median(cpu) if cpu else None
        ucpu = [float(r["ucpu"]) for r in ok if r["ucpu"] != ""]
        s["ucpu"] = statistics.median(ucpu) if ucpu else None
        rss = [int(r["rss"]) for r in ok if r["rss"] != ""]
        if rss:
            s.update(rmed=statistics.median(rss), rlo=min(rss), rhi=max(rss))
    return s


def time_table(rows):
    out = ["| operation | tool | runs | median s | min–max s | MB/s | "
           "ms/file | client CPU s | s3rver CPU | tdm ÷ best peer | "
           "tdm ÷ ref |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
           "--- | --- |"]
    for op, tools in group(rows, False).items():
        sums = {k: summary(v) for k, v in tools.items()}
        peers = [(s["med"], k[0]) for k, s in sums.items()
                 if k[1] == "peer" and "med" in s]
        refs = [(s["med"], k[0]) for k, s in sums.items()
                if k[1] == "ref" and "med" in s]
        best = min(peers) if peers else None
        for (tool, role), s in sums.items():
            name = tool if role != "ref" else f"{tool} (ref)"
            if "med" not in s:
                what = ("n/a (" + s["note"] + ")") if s["status"] == "n/a" \
                    else f"failed ({s['status']})"
                out.append(f"| {op} | {name} | {s['n']} | {what} | | | | | "
                           "| | |")
                continue
            runs = str(s["n"]) if s["ok"] == s["n"] else \
                f"{s['ok']}/{s['n']} ok"
            mbs = fnum(s["bytes"] / s["med"] / 1e6, 0) if s["bytes"] else ""
            msf = fnum(s["med"] * 1000 / s["files"], 3) if s["files"] else ""
            cpu = f"{s['cpu']:.0f} %" if s["cpu"] is not None else ""
            ucpu = fnum(s["ucpu"]) if s["ucpu"] is not None else ""
            rp = rr = ""
            if role == "tdm" and best:
                lo = sums[(best[1], "peer")]["lo"]
                rp = (f"**{best[0] / s['med']:.2f}×** median, "
                      f"{lo / s['lo']:.2f}× best run (vs {best[1]})")
            if role == "tdm" and refs:
                rr = "; ".join(
                    f"{m / s['med']:.2f}× median, "
                    f"{sums[(name, 'ref')]['lo'] / s['lo']:.2f}× best "
                    f"(vs {name})" for m, name in sorted(refs))
            out.append(f"| {op} | {name} | {runs} | {fnum(s['med'])} | "
                       f"{fnum(s['lo'])}–{fnum(s['hi'])} | {mbs} | {msf} | "
                       f"{ucpu} | {cpu} | {rp} | {rr} |")
    return out


def rss_table(rows):
    out = ["| measurement | tool | runs | files/objects | median peak RSS "
           "MB | min–max MB | median s | ms/file | client CPU s |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for op, tools in group(rows, True).items():
        for (tool, role), runs in tools.items():
            s = summary(runs)
            if "rmed" not in s:
                what = ("n/a (" + s["note"] + ")") if s["status"] == "n/a" \
                    else f"failed ({s['status']})"
                out.append(f"| {op} | {tool} | {s['n']} | | {what} | | | | "
                           "|")
                continue
            msf = fnum(s["med"] * 1000 / s["files"], 3) if s["files"] else ""
            out.append(f"| {op} | {tool} | {s['n']} | {s['files'] or ''} | "
                       f"{s['rmed'] / 1024:.1f} | {s['rlo'] / 1024:.1f}–"
                       f"{s['rhi'] / 1024:.1f} | {fnum(s['med'])} | {msf} | "
                       f"{fnum(s['ucpu']) if s['ucpu'] is not None else ''} |")
    return out


def main():
    rows = load(sys.argv[1])
    t = time_table(rows)
    r = rss_table(rows)
    parts = [x for x in (t, r) if len(x) > 2]
    print("\n\n".join("\n".join(x) for x in parts))


if __name__ == "__main__":
    main()
