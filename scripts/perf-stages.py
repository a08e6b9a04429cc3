#!/usr/bin/env python3
"""The exchange's CPU per request by stage, from a `perf record` of it.

    perf record -F 999 -g -p "$(pgrep -f 'exchange --config')" -o perf.data -- sleep 15
    scripts/perf-stages.py perf.data 458      # 458: loadtest's exchange CPU us/request

Each sample goes to the first stage whose rule matches its thread, its
object and its symbol (the table below, in order): the SQLite thread by
thread name; the pair actors by module path (or by thread name, in builds
from before they became tasks); the kernel by object, split into wake-ups
and context switches and the rest (loopback TCP, files); the exchange's
own code by module path. Without frame pointers, a library's samples
(allocation, tokio) count where the library is, not for the stage that
called it. Prints a Markdown table: share and microseconds per request.
"""
import collections
import re
import subprocess
import sys

STAGES = [
    ("persist: SQLite thread", lambda c, d, s: c.startswith("sqlx-sqlite")),
    ("match: pair actors", lambda c, d, s: c.startswith("actor-") or re.search(r"engine::|pipeline::actor", s)),
    ("kernel: wake-ups, context switches", lambda c, d, s: d == "[kernel.kallsyms]" and re.search(
        r"finish_task_switch|raw_spin_unlock|schedule|futex|irqentry|exit_to_user|rseq|try_to_wake|ep_poll|epoll", s)),
    ("kernel: loopback TCP, files, other", lambda c, d, s: d == "[kernel.kallsyms]"),
    ("persist: batching, sqlx (workers)", lambda c, d, s: re.search(r"sqlx|store::|persist", s)),
    ("journal", lambda c, d, s: re.search(r"commandlog|journal", s)),
    ("risk, settlement", lambda c, d, s: re.search(r"accounts::|pipeline::risk|RiskStage", s)),
    ("fan-out, market view", lambda c, d, s: re.search(r"gateway::market|gateway::ws::|broadcast|StreamMessage", s)),
    ("WebSocket frames", lambda c, d, s: re.search(r"tungstenite|gateway::wsapi", s)),
    ("HTTP, routing", lambda c, d, s: re.search(r"hyper|axum|http::|tower", s)),
    ("JSON, params, validation", lambda c, d, s: re.search(r"serde|gateway::rest|itoa|ryu|form_urlencoded|percent", s)),
    ("auth (HMAC)", lambda c, d, s: re.search(r"sha2|hmac|Sha256|gateway::auth", s)),
    ("allocation, copies", lambda c, d, s: re.search(r"mi_|malloc|free|memmove|memcpy|memset|memcmp|realloc", s)),
    ("tokio runtime", lambda c, d, s: re.search(r"tokio|flume|futures", s)),
]

LINE = re.compile(r"\s+([\d.]+)%\s+(\S+)\s+(\S+)\s+\[.\]\s+(.*?)\s+-\s+-\s*$")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, cpu_us = sys.argv[1], float(sys.argv[2])
    report = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "comm,dso,symbol",
         "--stdio", "-g", "none", "--percent-limit", "0"],
        capture_output=True, text=True, check=True).stdout
    share = collections.OrderedDict((name, 0.0) for name, _ in STAGES)
    share["other"] = 0.0
    for line in report.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pct, comm, dso, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        stage = next((name for name, rule in STAGES if rule(comm, dso, sym)), "other")
        share[stage] += pct
    total = sum(share.values()) or 1.0
    print("| stage | share | µs per request |")
    print("|---|---|---|")
    for name, pct in share.items():
        print(f"| {name} | {pct / total * 100:.1f}% | {pct / total * cpu_us:.0f} |")
    print(f"| total | 100% | {cpu_us:.0f} |")


if __name__ == "__main__":
    main()
