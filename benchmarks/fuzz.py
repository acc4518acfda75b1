"""Fuzz the loaders for as long as asked: cases/s, outcome counts per kind, every failure with its name.

Runs the suite of tests/fuzz (seeded mutations of valid official PyTorch and TensorFlow pickles,
rosinality files, native safetensors, npz latents, dataset images and datasets, each through the real
loaders in memory-limited child processes) in rounds until ``--seconds`` have passed, continuing the
case numbering so that every round tries new cases; a failing case is replayed by its name with
``--replay KIND/SEED/NUMBER``.

    python benchmarks/fuzz.py --seconds 600
    python benchmarks/fuzz.py --kinds pytorch-pickle,native --seconds 60 --workers 2
    python benchmarks/fuzz.py --replay rosinality/legacy/87
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "benchmarks")]
os.environ.setdefault("STYLEGAN_QUIET", "1")

from fuzz.harness import SUFFIX, TARGETS, Report, make_cases, run  # noqa: E402
from inference import machine  # noqa: E402

KINDS = tuple(k for k in TARGETS if k != "probe")


def replay(name: str) -> None:
    """Run one case in this process (tracebacks visible) and keep its file."""
    import importlib
    kind, seed, number = name.split("/")
    case = make_cases(kind, 1, int(number))[0]
    path = Path(f"fuzz-case-{kind}-{seed}-{number}{SUFFIX[kind]}").resolve()
    path.write_bytes(case.data)
    print(f"{case.name}: {case.description}; file {path}")
    module, function = TARGETS[kind].split(":")
    print(getattr(importlib.import_module(module), function)(str(path)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=120.0, help="How long to fuzz (rounds start until then).")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"Comma-separated kinds (of {', '.join(KINDS)}).")
    p.add_argument("--workers", type=int, default=2, help="Child processes running cases in parallel.")
    p.add_argument("--round", type=int, default=100, help="Cases of each kind per round.")
    p.add_argument("--start", type=int, default=0, help="First case number.")
    p.add_argument("--replay", metavar="KIND/SEED/NUMBER", help="Run one case in this process instead.")
    args = p.parse_args()
    if args.replay:
        return replay(args.replay)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    print(f"machine: {machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    total = Report()
    deadline = time.monotonic() + args.seconds
    start = args.start
    while time.monotonic() < deadline:
        cases = [c for kind in kinds for c in make_cases(kind, args.round, start)]
        rep = run(cases, workers=args.workers)
        total.results += rep.results
        total.seconds += rep.seconds
        start += args.round
        counts = Counter(r.outcome.kind for r in rep.results)
        print(f"round up to case {start}: {len(rep.results)} cases, {len(rep.results) / rep.seconds:.1f} cases/s, "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f", {len(rep.failures)} failures",
              flush=True)
    print(total.summary())
    print(f"load {os.getloadavg()[0]:.2f} at the end")
    sys.exit(1 if total.failures else 0)


if __name__ == "__main__":
    main()
