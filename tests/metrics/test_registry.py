import json

import numpy as np
import pytest
from support.models import make_tiny_checkpoint

from stylegan.errors import UserInputError
from stylegan.metrics import (
    METRICS,
    append_record,
    compute_metric,
    evaluate,
    is_training_run_dir,
    parse_metric,
    required_detectors,
)


@pytest.mark.parametrize("name,num,expected", [
    ("fid50k_full", None, (50_000, "fid50k_full")),
    ("fid10k_full", None, (10_000, "fid10k_full")),
    ("fid50k_full", 1000, (1000, "fid1k_full")),
    ("kid50k_full", 1500, (1500, "kid1500_full")),
    ("pr50k3_full", 1000, (1000, "pr1k3_full")),
    ("pr50k3_full", 100, (100, "pr0.1k3_full")),
    ("pr50k3_full", 1500, (1500, "pr1.5k3_full")),
    ("pr50k3_full", 7, (7, "pr0.007k3_full")),
    ("pr50k3", 250, (250, "pr0.25k3")),
    ("pr50k3", None, (50_000, "pr50k3")),
    ("ppl2_wend", None, (50_000, "ppl2_wend")),
    ("ppl2_wend", 2000, (2000, "ppl2_wend_2k")),
    ("eqt50k_int", 1000, (1000, "eqt1k_int")),
    ("eqr50k", None, (50_000, "eqr50k")),
    ("is50k", 500, (500, "is500")),
])
def test_metric_names_carry_the_sample_count(name, num, expected):
    _, n, full = parse_metric(name, num)
    assert (n, full) == expected
    assert parse_metric(full)[1] == n    # the reported name parses back to the same count


def test_a_count_that_would_run_into_the_neighbour_count_is_refused():
    # 'pr1003_full' could be 100 samples with k=3 or 1003 samples: the count must carry its k.
    with pytest.raises(UserInputError, match="pr1003_full is ambiguous.*pr0.1k3_full"):
        parse_metric("pr1003_full")
    with pytest.raises(UserInputError, match="whole number"):
        parse_metric("pr0.0005k3_full")


def test_unknown_metrics_list_the_known_ones():
    with pytest.raises(UserInputError, match="unknown metric 'fid'.*fid50k_full.*eqr50k"):
        parse_metric("fid")
    assert required_detectors(["fid50k_full", "pr50k3_full", "eqt50k_int"]) == {"inception", "vgg16"}
    assert {s.detector for s in METRICS.values()} == {"inception", "vgg16", None}
    assert {"fid50k_full", "kid50k_full", "pr50k3_full", "ppl2_wend", "eqt50k_int", "eqt50k_frac", "eqr50k"} <= set(METRICS)


def test_metrics_comparing_with_real_images_need_them():
    G = make_tiny_checkpoint("stylegan2").G_ema
    with pytest.raises(UserInputError, match="--data"):
        compute_metric("kid50k_full", G, num_gen=8)


def test_in_a_multi_process_run_only_the_main_process_computes():
    G = make_tiny_checkpoint("stylegan2").G_ema
    assert compute_metric("kid50k_full", G, "no/such/dataset", rank=1, num_gpus=2) is None


def test_every_result_record_names_its_detector_and_lands_in_the_run_dir(tmp_path, inception_file, vgg_file):
    G = make_tiny_checkpoint("stylegan2").G_ema
    run = tmp_path / "00000-run"
    run.mkdir()
    assert not is_training_run_dir(run)
    (run / "training_options.json").write_text("{}")
    assert is_training_run_dir(run)
    real = np.random.RandomState(0).randint(0, 256, [24, 32, 32, 3]).astype(np.uint8)
    results = evaluate(G, ["kid50k_full", "pr50k3_full", "is50k"], real, num_gen=20,
                       detector={"inception": inception_file, "vgg16": vgg_file}, run_dir=run,
                       snapshot="network-snapshot-000010.safetensors")
    assert [r.metric for r in results] == ["kid20_full", "pr0.02k3_full", "is20"]
    assert set(results[1].results) == {"pr0.02k3_full_precision", "pr0.02k3_full_recall"}
    for r, det in zip(results, ("inception-tiny.pt", "vgg16-tiny.pt", "inception-tiny.pt")):
        lines = (run / f"metric-{r.metric}.jsonl").read_text().splitlines()
        record = json.loads(lines[-1])
        assert record["detector"].startswith(f"{det} (sha256:") and record["results"] == r.results
        assert record["snapshot_pkl"] == "network-snapshot-000010.safetensors" and record["num_gen"] == 20
        assert {"metric", "total_time", "total_time_str", "num_gpus", "timestamp"} <= set(record)
        assert record["seed"] == 0 and record["precision"] == "fp32" and record["num_gpus"] == 1
    append_record(results[0], run)
    assert len((run / "metric-kid20_full.jsonl").read_text().splitlines()) == 2
