"""The results tables of docs/benchmarks.md, from one run's JSON.

    hms-tui bench --json > run.json && python benchmarks/bench_markdown.py run.json

Prints Markdown on stdout: every part's figures beside their ceilings, then the goals.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        r = json.load(f)
    srv, m = r.get("server", {}), r["machine"]
    print(f"Run: PostgreSQL {srv.get('server_version')} ({r.get('database')}), "
          f"synchronous_commit {srv.get('synchronous_commit')}, fsync {srv.get('fsync')}, "
          f"max_connections {srv.get('max_connections')}; {m['cpu_count']} cores, "
          f"{m['memory_gib']} GiB; load average {m['load_average']} before, "
          f"{m.get('load_average_after')} after; {r.get('seconds')} s"
          f"{' (--quick)' if r.get('quick') else ''}.\n")
    if "checkin" in r:
        rows = []
        for spread in ("spread", "one_doctor"):
            for n, c in r["checkin"][spread].items():
                if "error" in c:
                    rows.append([spread.replace("_", " "), n, c["error"], "", "", "", "", ""])
                    continue
                waits = c.get("server_waits", {}).get("share", {})
                top = ", ".join(f"{k} {v:.0%}" for k, v in list(waits.items())[:3])
                rows.append([spread.replace("_", " "), n, c["checkin_per_s"],
                             c["counter_update_per_s"], c["update_notify_per_s"],
                             c["ratio_to_counter"], c["ratio_to_update_notify"], top or "–"])
        print("**(a) Check-in throughput** (per second):\n")
        print(table(["spread", "clients", "check-in", "ceiling: UPDATE … RETURNING",
                     "ceiling: + pg_notify", "ratio", "ratio to + notify",
                     "check-in backends: what they waited on"], rows))
    if "pattern" in r:
        p = r["pattern"]
        rows = [[n, c["pattern_per_s"], c["pattern_rows"], c["pattern_duplicates"],
                 c["checkin_per_s"]] if "error" not in c else [n, c["error"], "", "", ""]
                for n, c in p["by_clients"].items()]
        print("**(b) The replaced numbering, one doctor** (per second):\n")
        print(table(["clients", "max(serial)+1", "rows", "duplicates", "ours (check-in)"], rows))
        print(f"Ours, counted afterwards over {fmt(p['ours_visits_counted'])} visits: "
              f"{p['ours_duplicates']} duplicates, {p['ours_gaps']} gaps.\n")
    if "live" in r:
        lv = r["live"]
        rows = [[n, lv[n]["rate_per_s"], lv[n]["changes"], lv[n]["p50_ms"], lv[n]["p99_ms"],
                 lv[n]["max_ms"], lv[n]["missing"], lv[n]["reads_per_listener"]]
                if "error" not in lv[n] else [n, lv[n]["error"], "", "", "", "", "", ""]
                for n in lv if n.isdigit()]
        print(f"**(c) Commit-to-screen latency** (ms; writer asked for {fmt(lv['rate_per_s'])}"
              f" changes/s; raw pg_notify round trip p50 {fmt(lv['raw_notify']['p50_ms'])}, "
              f"p99 {fmt(lv['raw_notify']['p99_ms'])}):\n")
        print(table(["listeners", "achieved/s", "changes", "p50", "p99", "max", "missing",
                     "reads per listener"], rows))
    if "history" in r:
        h = r["history"]
        ld = h["load"]
        print(f"**(d) Cost as history grows**: loaded {fmt(ld['patients'])} patients, "
              f"{fmt(ld['past_visits'])} past visits over {ld['days']} days, "
              f"{fmt(ld['audit_rows'])} audit rows ({ld['database_size']}) in "
              f"{fmt(ld.get('seconds'))} s. Milliseconds through the desk:\n")
        rows = []
        for kind, ratio in h["loaded_to_empty"].items():
            e, lo = h["empty"][kind], h["loaded"][kind]
            rows.append([kind.replace("_", " "), e["p50_ms"], e["p99_ms"], lo["p50_ms"],
                         lo["p99_ms"], ratio["p50"], lo["samples"]])
        print(table(["read", "empty p50", "empty p99", "loaded p50", "loaded p99",
                     "loaded/empty p50", "samples"], rows))
        texts = ", ".join(f"{k.removeprefix('search_')} `{v}`"
                          for k, v in h["search_texts"].items())
        print(f"Searches typed: {texts}; rows found on the loaded database: "
              f"{h['loaded']['search_hits']}.\n")
    if "screens" in r:
        s = r["screens"]
        frame = s["one_widget_frame"]
        rows = []
        for name, size in (("display", "display_size"), ("reception", "reception_size")):
            x = s[name]
            rows.append([name, f"{s[size][0]}x{s[size][1]}", x["changes"], x["cpu"]["p50_ms"],
                         x["cpu"]["p99_ms"], x["wall"]["p50_ms"], x["wall"]["p99_ms"],
                         frame[size]["cpu"]["p50_ms"], x["cpu_p50_to_frame"],
                         x["memory"]["start_mb"], x["memory"]["end_mb"],
                         x["memory"]["second_half_growth_mb"]])
        print(f"**(e) Screens** ({s['doctors']} doctors x {s['waiting']} waiting; ms per "
              "change, net of the harness's own wait):\n")
        print(table(["screen", "size", "changes", "UI CPU p50", "UI CPU p99", "wall p50",
                     "wall p99", "one-widget frame CPU p50", "ratio", "RSS start MB",
                     "RSS end MB", "2nd-half growth MB"], rows))
    if "import" in r:
        im = r["import"]
        rows = [[b["rows"], b["seconds"], b["us_per_row"], b["finished"]] for b in im["batches"]]
        print(f"**(f) Bulk import** ({im['path']}):\n")
        print(table(["rows in the batch", "seconds", "µs per row", "finished"], rows))
        if im.get("stopped"):
            print(f"Series ended: {im['stopped']}.\n")
    print("**Goals**:\n")
    print(table(["goal", "value", "target", "met"],
                [[g["goal"], g["value"], g["target"],
                  {True: "yes", False: "**no**", None: "not measured"}[g["met"]]]
                 for g in r["goals"]]))


if __name__ == "__main__":
    main()
