#!/usr/bin/env python3
"""Instructions per request by component, from callgrind profiles (loadtest/bench/instructions.sh).

Each target was profiled twice, a short and a long run of the same load, so start-up, warm-up
and shutdown cancel out: per request = (long - short) / (requests long - requests short), for
the whole program and for each function. Functions are summed into components by the crate or
library they belong to. Usage:

    instructions.py OUT.md LABEL SHORT.out LONG.out SHORT_REQUESTS LONG_REQUESTS [LABEL ...]

The first target is the reference the others are compared with.
"""

import re
import subprocess
import sys
from collections import defaultdict

# Component by the first crate path in a function's name (the innermost type or function is
# named last, so the first `crate::` is where it lives, or the trait's crate for `<T as U>`).
COMPONENTS = {
    "its own code (flashsale, or floor.rs)": ["flashsale", "floor"],
    "actix-web and actix-http": ["actix_http", "actix_web", "actix_service", "actix_server",
                                 "actix_router", "actix_utils", "actix_rt", "actix_cors",
                                 "http", "httparse"],
    "tracing (the request span)": ["tracing", "tracing_core", "tracing_subscriber",
                                   "tracing_actix_web", "sharded_slab"],
    "fred and redis-protocol": ["fred", "redis_protocol", "nom"],
    "tokio": ["tokio", "tokio_util", "mio"],
    "serde and serde_json": ["serde", "serde_core", "serde_json"],
    "metrics": ["metrics", "metrics_exporter_prometheus"],
    "hash maps (hashbrown)": ["hashbrown"],
    "ring (SHA-1, HMAC)": ["ring"],
    "bytes": ["bytes"],
    "futures": ["futures_util", "futures_core"],
    "core and alloc (formatting, UTF-8, vectors)": ["core", "alloc", "std"],
}
CRATE_OF = {crate: name for name, crates in COMPONENTS.items() for crate in crates}


def component(name, obj):
    if "libc.so" in obj:
        if re.search(r"mem(set|cpy|move|cmp)", name):
            return "libc memset and memcpy"
        return "libc (other)"
    if re.match(r"_?mi_", name):
        return "allocator (mimalloc)"
    for crate in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)::", name):
        if crate in CRATE_OF:
            return CRATE_OF[crate]
    return "other"


def functions(path):
    """Exclusive instructions of every function in a callgrind profile."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--show-percs=no", path],
        capture_output=True, text=True, check=True,
    ).stdout
    counts = defaultdict(int)
    total = None
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(.*)$", line)
        if not m:
            continue
        value, rest = int(m.group(1).replace(",", "")), m.group(2).strip()
        if rest.startswith("PROGRAM TOTALS"):
            total = value
            continue
        fm = re.match(r"(\S*?):(.*?)\s*(\[[^\]]*\])?$", rest)
        if fm:
            counts[(fm.group(2), fm.group(3) or "")] += value
    if total is None:
        sys.exit(f"{path}: no PROGRAM TOTALS in callgrind_annotate's output")
    return total, counts


def per_request(short, long_, n_short, n_long):
    requests = n_long - n_short
    if requests <= 0:
        sys.exit("the long run answered no more requests than the short one")
    t_short, f_short = functions(short)
    t_long, f_long = functions(long_)
    by = defaultdict(float)
    for key in set(f_short) | set(f_long):
        by[component(*key)] += (f_long.get(key, 0) - f_short.get(key, 0)) / requests
    return (t_long - t_short) / requests, by, requests


def main():
    out, args = sys.argv[1], sys.argv[2:]
    if not args or len(args) % 5:
        sys.exit(__doc__)
    targets = []
    for i in range(0, len(args), 5):
        label, short, long_, n_short, n_long = args[i:i + 5]
        targets.append((label, *per_request(short, long_, int(n_short), int(n_long))))
    reference = targets[0]
    names = sorted({c for t in targets for c in t[2]},
                   key=lambda c: -max(t[2].get(c, 0) for t in targets))
    head = "| component | " + " | ".join(t[0] for t in targets)
    head += "".join(f" | {t[0]} − {reference[0]}" for t in targets[1:]) + " |"
    lines = [head, "|---" * (1 + 2 * len(targets) - 1) + "|"]

    def row(label, values):
        cells = [f"{v / 1000:.1f}k" for v in values]
        cells += [f"{(v - values[0]) / 1000:+.1f}k" for v in values[1:]]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines.append(row("**all (instructions per request)**", [t[1] for t in targets]))
    for name in names:
        values = [t[2].get(name, 0.0) for t in targets]
        if max(abs(v) for v in values) >= 50:
            lines.append(row(name, values))
    lines.append("")
    lines.append("Requests measured (long run − short run): " + ", ".join(
        f"{t[0]} {t[3]}" for t in targets) + ".")
    text = "\n".join(lines) + "\n"
    with open(out, "a", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
