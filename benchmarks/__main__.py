"""Run every benchmark and print one table of ratios against same-run baselines.

Usage: python -m benchmarks [name ...]   (names: engine, activation_lab, landscape, features, playground, cold_start,
       architectures)
Exit status 1 when a ratio misses its target.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import (  # noqa: E402
    bench_activation_lab,
    bench_architectures,
    bench_cold_start,
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
    "cold_start": bench_cold_start.run,
    "architectures": bench_architectures.run,
}


def device_line() -> str:
    """Where the figures come from: a GPU run and a CPU run are not comparable."""
    import platform

    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"device: {', '.join(gpus) if gpus else 'CPU only'} · {cpu} · {os.cpu_count()} logical cores"


def main(names: list[str]) -> int:
    print(device_line(), flush=True)
    rows = []
    for name in names or list(SUITES):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += SUITES[name]()
    print_table(rows)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
