"""The fuzzing suite: a few thousand seeded mutations of valid files, each through the real loaders in a
memory-limited child, must load and work or be refused with one line (see fuzz/harness.py)."""

from __future__ import annotations

import pytest

from fuzz.harness import Case, bound, judge, make_cases, run
from stylegan.checkpoints.isolation import Outcome

#: Cases per kind in CI: about 2,700 in all, a minute or two on 2 cores (benchmarks/fuzz.py runs longer).
CASES = {"pytorch-pickle": 500, "tf-pickle": 400, "rosinality": 350, "native": 400, "npz": 400, "images": 300,
         "dataset": 300}


@pytest.mark.slow
def test_mutated_files_load_and_work_or_are_refused_with_one_line():
    cases = [case for kind, count in CASES.items() for case in make_cases(kind, count)]
    report = run(cases, workers=2)
    print(report.summary())
    assert not report.failures, report.summary()
    counts = report.counts()
    for kind in CASES:                      # every kind reached both the loaded and the refused paths
        assert counts[(kind, "ok")] > 0 and counts[(kind, "refused")] > 0, (kind, counts)
    assert report.peak_ratio() <= 1.0


def test_cases_replay_exactly():
    first, again = make_cases("pytorch-pickle", 5, 40), make_cases("pytorch-pickle", 5, 40)
    assert [c.data for c in first] == [c.data for c in again]
    assert len({c.data for c in first}) == 5 and all(c.name.startswith("pytorch-pickle/") for c in first)


def test_the_harness_catches_crashes_hangs_tracebacks_noise_and_memory(tmp_path):
    actions = ["segfault", "hang", "traceback", "two-lines", "warn", "allocate", "fine"]
    cases = [Case("probe", "probe", i, action, action.encode()) for i, action in enumerate(actions)]
    report = run(cases, workers=1, timeout=5, preload=())
    problems = {r.case.description: r.problem for r in report.results}
    assert problems["segfault"].startswith("crash") and "SIGSEGV" in problems["segfault"]
    assert problems["hang"].startswith("timeout")
    assert "KeyError" in problems["traceback"]
    assert "not one line" in problems["two-lines"]
    assert "stderr" in problems["warn"]
    assert problems["fine"] == ""
    by_name = {r.case.description: r for r in report.results}
    assert by_name["segfault"].reproduced is True                  # re-run alone in a fresh child
    assert by_name["allocate"].outcome.peak_bytes >= 500 << 20     # a real 512 MB touched: measured ...
    assert judge(by_name["allocate"].case, by_name["allocate"].outcome).startswith("peak memory")  # ... over bound
    assert bound(1000) == 3 * 1000 + (256 << 20)
    assert judge(cases[0], Outcome("refused", message="out of memory while loading")).startswith("ran into")
