#!/usr/bin/env python3
"""Renders scripts/bench.sh's measurements as markdown.

    report.py RESULTS.tsv META.tsv > bench-results.md

RESULTS.tsv (one row per tool and pair, tab-separated, no header):
    pair tool kind delta_bytes gen_wall_s gen_rss_kib gen_rc apply_wall_s apply_rss_kib apply_rc exact note
    kind: "diffgen" (SWU -> SWU) or "peer" (raw image -> raw image). Empty fields: not measured.
META.tsv: pair key value (title, desc, sizes, diffgen report numbers, skipped, ...); pair "*"
holds run-wide facts.
"""
import sys
from collections import OrderedDict

MIB = 1024 * 1024
# Targets from the issue.
SIZE_TARGET = {"upgrade": 0.80, "pkgadd": 0.95}
GEN_TIME_FACTOR = 2.0          # generation wall time <= 2x xdelta3's
GEN_RSS_LIMIT_KIB = 2 * 1024 * 1024   # <= 2 GiB (stated for 400 MiB images)
APPLY_RSS_LIMIT_KIB = 64 * 1024       # <= 64 MiB


def load(results_path, meta_path):
    rows = OrderedDict()
    with open(results_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            fields += [""] * (12 - len(fields))
            keys = ["pair", "tool", "kind", "delta", "gen_wall", "gen_rss", "gen_rc",
                    "apply_wall", "apply_rss", "apply_rc", "exact", "note"]
            row = dict(zip(keys, fields))
            rows.setdefault(row["pair"], []).append(row)
    meta = OrderedDict()
    with open(meta_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            pair, key, value = (line.split("\t", 2) + ["", ""])[:3]
            meta.setdefault(pair, OrderedDict())[key] = value
    return rows, meta


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt_int(n):
    return f"{int(n):,}" if n is not None else "—"


def fmt_mib_kib(kib):
    k = num(kib)
    return f"{k / 1024:,.0f}" if k is not None else "—"


def fmt_s(s):
    v = num(s)
    return f"{v:.1f}" if v is not None else "—"


def ok(row, phase):
    return row.get(phase + "_rc", "") == "0"


def main():
    rows, meta = load(sys.argv[1], sys.argv[2])
    out = []
    run = meta.get("*", {})
    out.append("# diffgen benchmark: deltas between SWU releases vs. whole-image differs")
    out.append("")
    for key, value in run.items():
        out.append(f"- {key}: {value}")
    out.append("")
    out.append("diffgen rows: SWU → SWU (recompressed v1.swu + delta → v2.swu, byte-exact); the "
               "peers work on the RAW uncompressed ext4 images (v1.ext4 → v2.ext4), so they do "
               "not include re-creating the compressed image or the SWU. \"×best peer\" = delta "
               "size / smallest peer delta of that pair. \"% full\" = delta size / size of the "
               "zstd-recompressed v2.swu. Wall times in s, peak RSS in MiB (`/usr/bin/time -v`). "
               "diffgen generation includes its verification by applying.")
    out.append("")
    out.append("| pair | tool | delta bytes | % full | ×best peer | gen s | gen RSS MiB "
               "| apply s | apply RSS MiB | exact |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")

    targets = []
    pairs = [p for p in meta if p != "*"]
    for pair in pairs:
        m = meta[pair]
        title = m.get("title", pair)
        if "skipped" in m:
            out.append(f"| {title} | *skipped: {m['skipped']}* | | | | | | | | |")
            continue
        prows = rows.get(pair, [])
        full = num(m.get("v2_swu_zstd"))
        peers = [r for r in prows if r["kind"] == "peer" and ok(r, "gen") and num(r["delta"])
                 and r["exact"] == "yes"]
        best = min((num(r["delta"]) for r in peers), default=None)
        best_name = next((r["tool"] for r in peers if num(r["delta"]) == best), None)
        for r in prows:
            d = num(r["delta"]) if ok(r, "gen") else None
            pct = f"{100 * d / full:.2f} %" if d is not None and full else "—"
            rel = f"{d / best:.2f}×" if d is not None and best else "—"
            if not ok(r, "gen"):
                exact = f"FAILED (gen exit {r['gen_rc']})"
            elif r["apply_rc"] and not ok(r, "apply"):
                exact = f"FAILED (apply exit {r['apply_rc']})"
            else:
                exact = r["exact"] or "—"
            tool = r["tool"] + (f" ({r['note']})" if r["note"] else "")
            gen_rss = fmt_mib_kib(r["gen_rss"])
            out.append(f"| {title} | {tool} | {fmt_int(d)} | {pct} | {rel} | {fmt_s(r['gen_wall'])} "
                       f"| {gen_rss} | {fmt_s(r['apply_wall'])} | {fmt_mib_kib(r['apply_rss'])} "
                       f"| {exact} |")
        # Targets for diffgen's two profiles.
        xd = next((r for r in prows if r["tool"].startswith("xdelta3") and ok(r, "gen")), None)
        for r in prows:
            if r["kind"] != "diffgen":
                continue
            d = num(r["delta"]) if ok(r, "gen") else None
            cells = [title, r["tool"]]
            limit = SIZE_TARGET.get(pair)
            if d is None:
                cells.append("FAILED")
            elif best is None:
                cells.append("no peer result")
            else:
                ratio = d / best
                if limit is None:
                    cells.append(f"{ratio:.2f}× (no target)")
                else:
                    cells.append(f"{ratio:.2f}× vs ≤ {limit}× → {'PASS' if ratio <= limit else 'FAIL'}")
            g, x = num(r["gen_wall"]), num(xd["gen_wall"]) if xd else None
            if g is not None and x:
                f = g / x
                cells.append(f"{g:.1f} s / {x:.1f} s = {f:.1f}× vs ≤ {GEN_TIME_FACTOR:.0f}× → "
                             f"{'PASS' if f <= GEN_TIME_FACTOR else 'FAIL'}")
            else:
                cells.append("—")
            rss = num(r["gen_rss"])
            img = num(m.get("v2_raw"))
            img_s = f" (image {img / MIB:.0f} MiB)" if img else ""
            cells.append(f"{rss / 1024:,.0f} MiB{img_s} → {'PASS' if rss <= GEN_RSS_LIMIT_KIB else 'FAIL'}"
                         if rss is not None else "—")
            arss = num(r["apply_rss"])
            cells.append(f"{arss / 1024:,.0f} MiB → {'PASS' if arss <= APPLY_RSS_LIMIT_KIB else 'FAIL'}"
                         if arss is not None else "—")
            targets.append("| " + " | ".join(cells) + " |")

    out.append("")
    out.append("## Targets from the issue (diffgen rows)")
    out.append("")
    out.append("Size: upgrade pair ≤ 0.8× smallest peer, package-add pair ≤ 0.95× (other pairs: ratio "
               "only). Generation wall time (recompression excluded) ≤ 2× xdelta3's. Generation peak "
               "RSS ≤ 2 GiB (stated for 400 MiB images; image sizes shown). Apply peak RSS ≤ 64 MiB.")
    out.append("")
    out.append("| pair | profile | size vs smallest peer | gen time vs xdelta3 | gen RSS ≤ 2 GiB "
               "| apply RSS ≤ 64 MiB |")
    out.append("|---|---|---|---|---|---|")
    out.extend(targets)

    out.append("")
    out.append("## Pairs")
    out.append("")
    for pair in pairs:
        m = meta[pair]
        out.append(f"- **{m.get('title', pair)}**: {m.get('desc', '')}")
        for key in ("v1_raw", "v2_raw", "v1_swu_gzip9", "v2_swu_gzip9", "v2_swu_zstd", "v2_swu_gzip"):
            if key in m:
                out.append(f"  - {key}: {fmt_int(num(m[key]))} bytes")
        for key, value in m.items():
            if key.startswith("diffgen ") or key.startswith("note"):
                out.append(f"  - {key}: {value}")
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
