#!/usr/bin/env python3
"""Per-second p99 of a load generator loop trace (`countersign-loadgen --loop-trace PATH`).

Usage: scripts/loop-tail-by-second.py TRACE...

Prints, for each trace, the p99 loop time (claim + sign + push, in ms) of every whole second of
the round, so that a tail that comes from something periodic (a background task every N seconds)
shows as a pattern instead of disappearing into one percentile.
"""
import collections
import csv
import sys


def main(paths):
    for path in paths:
        by_second = collections.defaultdict(list)
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                total = int(row["claim_us"]) + int(row["sign_us"]) + int(row["push_us"])
                by_second[int(row["start_us"]) // 1_000_000].append(total)
        seconds = sorted(by_second)[:-1]  # the last second is partial
        tails = []
        for s in seconds:
            loops = sorted(by_second[s])
            tails.append(loops[min(len(loops) - 1, int(len(loops) * 0.99))] / 1000)
        print(f"{path}: p99 ms per second: " + " ".join(f"{t:.0f}" for t in tails))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
