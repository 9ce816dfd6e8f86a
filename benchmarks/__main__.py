"""Run every benchmark and print one table of ratios against same-run baselines.

Usage: python -m benchmarks [name ...]   (names: engine, activation_lab, landscape, features, playground)
Exit status 1 when a ratio misses its target.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import (  # noqa: E402
    bench_activation_lab,
    bench_engine,
    bench_features,
    bench_landscape,
    bench_playground,
)
from benchmarks.common import print_table  # noqa: E402

SUITES = {
    "engine": bench_engine.run,
    "activation_lab": bench_activation_lab.run,
    "landscape": bench_landscape.run,
    "features": bench_features.run,
    "playground": bench_playground.run,
}


def main(names: list[str]) -> int:
    rows = []
    for name in names or list(SUITES):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += SUITES[name]()
    print_table(rows)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
