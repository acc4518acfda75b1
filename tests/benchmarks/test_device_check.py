"""benchmarks/device_check.py: its CPU mode runs every section for real (so the GPU run cannot rot), and
one failing part is recorded without losing the rest."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failing_item_or_section_is_recorded_and_the_rest_still_runs(tmp_path):
    dc = _module()
    import torch
    ck = dc.Check(torch.device("cpu"), tmp_path, quick=True, budget_s=60)

    def broken_section(ck):
        raise RuntimeError("section exploded")

    def mixed_section(ck):
        ck.item("mixed", "raises", lambda: 1 / 0)
        ck.item("mixed", "fails", lambda: {"status": "fail", "max_abs": 0.5})
        ck.item("mixed", "too long", dict, need_s=10_000)
        ck.item("mixed", "passes", lambda: {"max_abs": 1e-6})
    dc.run_sections(ck, {"broken": broken_section, "mixed": mixed_section})
    report = json.loads((tmp_path / "device-check.json").read_text())
    assert "section exploded" in report["sections"]["broken"]["error"]
    items = {i["name"]: i for i in report["sections"]["mixed"]["items"]}
    assert items["raises"]["status"] == "error" and "ZeroDivisionError" in items["raises"]["error"]
    assert items["fails"]["status"] == "fail"
    assert items["too long"]["status"] == "skipped" and "time budget" in items["too long"]["reason"]
    assert items["passes"]["status"] == "pass"
    md = (tmp_path / "device-check.md").read_text()
    assert "section error: `RuntimeError: section exploded`" in md
    assert "| passes | pass |" in md and "1 pass, 1 fail, 1 error, 1 skipped" in md


@pytest.mark.slow
def test_cpu_quick_mode_runs_every_section(tmp_path):
    from stylegan.devices import cpu_bf16_kernel
    native_bf16 = cpu_bf16_kernel() is not None
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path),
                           "--budget", "1500"], env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "device-check.json").read_text())
    assert list(report["sections"]) == ["correctness", "commands", "speed"]
    items = {s: {i["name"]: i for i in sec["items"]} for s, sec in report["sections"].items()}
    bad = {n: i for sec in items.values() for n, i in sec.items() if i["status"] not in ("pass", "measured")
           and not (n.endswith("bf16") and not native_bf16)}
    assert not bad, bad
    correctness = items["correctness"]
    for net in ("reference sg2 64", "reference sg3t 64", "reference sg3r 64",
                "published sg2 32", "published sg3t 32", "published sg3r 32"):
        assert correctness[f"{net} fp32"]["max_abs"] <= 1e-3 and f"{net} fp16" in correctness
        bf16 = correctness[f"{net} bf16"]         # runs where the CPU has native bf16
        assert bf16["psnr_db"] > 30 if native_bf16 else "no native bf16" in bf16["reason"]
    assert correctness["reference sg3r 64 fp32"]["max_abs_vs_nvidia"] <= 1e-3
    assert set(items["commands"]) == {
        "generate", "mix", "video", "project 2 steps", "variations", "directions sefa", "edit", "metrics eqt_int",
        "dataset 16x16", "train stylegan2 16x16 0.008 kimg", "train stylegan3-t 16x16 0.008 kimg",
        "torchrun --nproc_per_node 1 train", "serve render"}
    assert items["commands"]["serve render"]["bytes"] > 100
    assert items["commands"]["train stylegan3-t 16x16 0.008 kimg"]["ticks"] >= 2
    speed = items["speed"]
    assert set(speed["inference sg3r 32 batch 2"]["img_per_s"]) == {"fp32", "fp16"} | ({"bf16"} if native_bf16 else set())
    assert speed["compile sg2 32 batch 2 fp32"]["max_abs_compiled_vs_eager"] <= 1e-4
    assert speed["train stylegan3-r 16x16 batch 4"]["sec_per_kimg"] > 0
    md = (tmp_path / "device-check.md").read_text()
    for heading in ("## correctness", "## commands", "## speed", "### images/s (peak memory GiB)",
                    "| sg3r | 32 | 2 |", "| serve render | pass |"):
        assert heading in md, heading
