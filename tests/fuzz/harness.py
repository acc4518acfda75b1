"""Run fuzz cases through the real loaders in memory-limited child processes and judge each outcome.

Why a seeded mutation fuzzer and not Hypothesis: the inputs are binary files of 10-100 KB whose
interesting mutations are structural (one attribute, option, config field, zip or npy header replaced by
a hostile value) and format-blind (bytes flipped, cut, duplicated). Hypothesis's strategies and
shrinking are built for generating values, not for mutating a corpus of real files, its example
database would be one more moving part, and it adds a dependency. A case here is named by
``kind/seed/number`` and rebuilt from ``random.Random(that name)``, so any failure replays exactly.

Each case runs in a child (:class:`stylegan.checkpoints.isolation.Worker`, memory-limited per call by
``RLIMIT_AS`` to 4x the file + 1 GB, the explorer's limit); a few hundred cases share one child to
amortise its start-up, and a case that crashes or hangs it is re-run alone in a fresh child to name it.
A case passes when the file loaded and worked (:mod:`fuzz.targets`) or was refused with one
``StyleGANError`` line, with nothing on stderr, in time, and with a peak resident memory of at most
:data:`PEAK_FACTOR` x the file + :data:`PEAK_SLACK`.
"""

from __future__ import annotations

import functools
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.corpus import Seed, seeds
from fuzz.mutate import mutate
from stylegan.checkpoints.isolation import Outcome, Worker, untrusted_memory_limit

TARGETS = {"pytorch-pickle": "fuzz.targets:load_model", "tf-pickle": "fuzz.targets:load_model",
           "rosinality": "fuzz.targets:load_model", "native": "fuzz.targets:load_model",
           "npz": "fuzz.targets:load_latents", "images": "fuzz.targets:make_dataset",
           "dataset": "fuzz.targets:read_dataset", "probe": "fuzz.probe:probe"}
SUFFIX = {"pytorch-pickle": ".pkl", "tf-pickle": ".pkl", "rosinality": ".pt", "native": ".safetensors",
          "npz": ".npz", "images": ".zip", "dataset": ".zip", "probe": ".bin"}
#: The stated bound on a case's peak resident memory (above the child's baseline): this x the file ...
PEAK_FACTOR = 3
#: ... plus this (torch's allocator caches, a rendered image, the decoded dataset).
PEAK_SLACK = 256 << 20
TIMEOUT_S = 60.0


@dataclass
class Case:
    kind: str
    seed: str
    index: int
    description: str
    data: bytes

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.seed}/{self.index}"


@dataclass
class Result:
    case: Case
    outcome: Outcome
    problem: str = ""                      # empty when the case passed
    reproduced: bool | None = None         # crashes and hangs: did it happen again alone?


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.problem]

    def counts(self) -> Counter:
        return Counter((r.case.kind, r.outcome.kind) for r in self.results)

    def peak_ratio(self) -> float:
        """The largest peak memory of a case, as a fraction of its allowed bound."""
        return max((r.outcome.peak_bytes / bound(len(r.case.data)) for r in self.results), default=0.0)

    def summary(self) -> str:
        lines = [f"{len(self.results)} cases in {self.seconds:.1f} s ({len(self.results) / max(self.seconds, 1e-9):.1f}"
                 f" cases/s), {len(self.failures)} failures, peak memory at most {self.peak_ratio():.0%} of the bound"]
        by_kind: dict[str, Counter] = {}
        for (kind, outcome), n in sorted(self.counts().items()):
            by_kind.setdefault(kind, Counter())[outcome] = n
        for kind, counter in by_kind.items():
            lines.append(f"  {kind:15s} " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))
        for r in self.failures[:20]:
            lines.append(f"  FAIL {r.case.name} [{r.case.description}]: {r.problem}"
                         + ("" if r.reproduced is None else f" (alone: {'again' if r.reproduced else 'not again'})"))
        return "\n".join(lines)


def bound(file_bytes: int) -> int:
    return PEAK_FACTOR * file_bytes + PEAK_SLACK


@functools.lru_cache(maxsize=1)
def all_seeds() -> dict[str, list[Seed]]:
    """The corpus, plus datasets written by the dataset tool (seeds of the 'dataset' kind)."""
    corpus = dict(seeds())
    corpus.setdefault("dataset", _dataset_seeds(corpus["images"]))
    return corpus


def _dataset_seeds(image_seeds: list[Seed]) -> list[Seed]:
    import io
    import zipfile
    from stylegan.data.dataset_tool import make_dataset
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in image_seeds:
            src, dest = Path(tmp) / f"{seed.name}.zip", Path(tmp) / f"{seed.name}-ds.zip"
            src.write_bytes(seed.data)
            make_dataset(src, dest, resolution=8, workers=1)
            with zipfile.ZipFile(io.BytesIO(dest.read_bytes())) as zf:
                members = {i.filename: zf.read(i) for i in zf.infolist()}
            out.append(Seed("dataset", seed.name, dest.read_bytes(), members))
    return out


def make_cases(kind: str, count: int, start: int = 0) -> list[Case]:
    """``count`` cases of ``kind``, numbered from ``start``; case ``i`` cycles through the seeds."""
    pool = all_seeds()[kind]
    cases = []
    for i in range(start, start + count):
        seed = pool[i % len(pool)]
        rng = random.Random(f"{kind}/{seed.name}/{i}")
        description, data = mutate(seed, rng)
        cases.append(Case(kind, seed.name, i, description, data))
    return cases


def judge(case: Case, out: Outcome) -> str:
    """Why ``out`` is not acceptable for ``case`` ('' when it is)."""
    if out.kind in ("crash", "timeout", "bug"):
        return f"{out.kind}: {out.message.strip().splitlines()[-1][:300] if out.message.strip() else out.kind}"
    if out.kind == "refused" and ("\n" in out.message or not out.message.strip()):
        return f"refused with a message that is not one line: {out.message[:200]!r}"
    if out.stderr.strip():
        return f"wrote to stderr: {out.stderr.strip()[:200]!r}"
    if out.peak_bytes > bound(len(case.data)):
        return (f"peak memory {out.peak_bytes >> 20} MB over the bound {bound(len(case.data)) >> 20} MB "
                f"({PEAK_FACTOR}x the {len(case.data)}-byte file + {PEAK_SLACK >> 20} MB)")
    if out.kind == "refused" and ("not enough memory" in out.message or "out of memory" in out.message):
        return f"ran into the memory limit instead of a budget: {out.message[:200]}"
    return ""


PRELOAD = ("stylegan.checkpoints", "fuzz.targets")


def run(cases: list[Case], workers: int = 2, timeout: float = TIMEOUT_S, preload: tuple[str, ...] = PRELOAD) -> Report:
    """Every case through its target, ``workers`` children in parallel; crashes and hangs re-run alone.
    ``preload``: modules each child imports before its first case."""
    report = Report()
    start = time.monotonic()
    lanes = [cases[i::workers] for i in range(workers)]
    results: list[list[Result]] = [[] for _ in lanes]
    with tempfile.TemporaryDirectory(prefix="stylegan-fuzz-") as tmp:
        threads = [threading.Thread(target=_lane, args=(lane, Path(tmp) / str(i), results[i], timeout, preload))
                   for i, lane in enumerate(lanes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.results = [r for lane in results for r in lane]
        for r in report.results:
            if r.outcome.kind in ("crash", "timeout"):
                with Worker(preload) as alone:
                    again = _call(alone, r.case, Path(tmp) / "alone", timeout)
                r.reproduced = again.kind == r.outcome.kind
    report.seconds = time.monotonic() - start
    return report


def _lane(cases: list[Case], folder: Path, out: list[Result], timeout: float, preload: tuple[str, ...]) -> None:
    folder.mkdir(parents=True)
    with Worker(preload) as worker:
        warmed = set()
        for case in cases:
            if case.kind not in warmed and case.kind != "probe":   # one-time initialisations are no case's peak
                seed = next(s for s in all_seeds()[case.kind] if s.name == case.seed)
                _call(worker, Case(case.kind, seed.name, -1, "seed", seed.data), folder, timeout)
                warmed.add(case.kind)
            outcome = _call(worker, case, folder, timeout)
            out.append(Result(case, outcome, judge(case, outcome)))


def _call(worker: Worker, case: Case, folder: Path, timeout: float) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"case{SUFFIX[case.kind]}"
    path.write_bytes(case.data)
    try:
        return worker.call(TARGETS[case.kind], [str(path)], memory_bytes=untrusted_memory_limit(len(case.data)),
                           timeout=timeout)
    finally:
        path.unlink(missing_ok=True)
