"""Import time of ``from oidc_combinedreg import CombinedRegistration`` against a Flask IdP's own.

The baseline is what any Flask + Authlib OpenID provider imports anyway: ``flask`` and
``authlib.integrations.flask_oauth2``. Each measurement is a fresh interpreter (``python -c``,
nothing cached in ``sys.modules``; the bytecode caches are warmed by one untimed round first), the
two sides alternate within each round, and the median of the per-round ratios is reported, so a
busy machine slows both sides alike.

    python benchmarks/import_time.py [--rounds N] [--top K]

``--top K`` also prints the K slowest modules under ``python -X importtime`` (cumulative), the
list to start from when the ratio grows.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

OURS = "from oidc_combinedreg import CombinedRegistration"
BASELINE = "import flask, authlib.integrations.flask_oauth2"
# What the interpreter costs by itself (subtracted from both sides).
EMPTY = "pass"


def _run(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def measure(rounds: int) -> tuple[float, float, float]:
    """(median ratio ours/baseline, median ours seconds, median baseline seconds), net of start-up."""
    for code in (EMPTY, OURS, BASELINE):  # warm the bytecode caches, untimed
        _run(code)
    ratios, ours_s, base_s = [], [], []
    for i in range(rounds):
        order = [OURS, BASELINE] if i % 2 == 0 else [BASELINE, OURS]
        empty = _run(EMPTY)
        timed = {code: _run(code) for code in order}
        ours, base = timed[OURS] - empty, timed[BASELINE] - empty
        ours_s.append(ours)
        base_s.append(base)
        ratios.append(ours / base)
    return statistics.median(ratios), statistics.median(ours_s), statistics.median(base_s)


def slowest(code: str, top: int) -> list[tuple[int, str]]:
    """The ``top`` modules with the largest cumulative import time (microseconds, name)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()
    ratio, ours, base = measure(args.rounds)
    print(f"{OURS}: {ours * 1000:.0f} ms")
    print(f"{BASELINE}: {base * 1000:.0f} ms")
    print(f"ratio (median of {args.rounds} rounds): {ratio:.2f}x")
    if args.top:
        for cumulative, name in slowest(OURS, args.top):
            print(f"  {cumulative / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
