"""Import time: wall time of `python -c "import X"` as fresh processes, for numpy,
tapegrad and torch, run in alternation; reported in seconds and as ratios to numpy.
tapegrad's bytecode is compiled first, as an install does.

    python bench/import_time.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

MODULES = ["numpy", "tapegrad", "torch"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--modules", default=",".join(MODULES))
    args = ap.parse_args()
    modules = args.modules.split(",")
    # A normal install writes bytecode at install time; this machine sets
    # PYTHONDONTWRITEBYTECODE=1, which would make every import compile from source.
    import tapegrad

    subprocess.run([sys.executable, "-m", "compileall", "-q", tapegrad.__path__[0]], check=True)
    walls: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(args.rounds):
        for m in modules:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {m}"], check=True)
            walls[m].append(time.perf_counter() - t0)
    print(f"import_time (s, median of {args.rounds} fresh processes, interleaved)")
    for m in modules:
        ratio = statistics.median(a / b for a, b in zip(walls[m], walls["numpy"]))
        print(f"  {m:10s} {statistics.median(walls[m]):.3f}   {m}/numpy = {ratio:.2f}")
    print(json.dumps({"bench": "import_time", "walls": walls}))


if __name__ == "__main__":
    main()
