"""The built-in StyleGAN3-T model (`--network builtin-sg3`): shipped, loadable by name, equivariant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.cli import png, run

from stylegan.checkpoints import builtin_model_path, load_generator, load_network
from stylegan.cli.main import main


def test_builtin_sg3_is_a_stylegan3_t_with_its_card():
    assert builtin_model_path("builtin-sg3").stat().st_size < 2 << 20
    G = load_generator("builtin-sg3")
    assert G.config.generation == "stylegan3" and G.img_resolution == 32 and G.synthesis.has_input_transform
    meta = load_network("builtin-sg3", which=("G_ema",)).metadata
    assert meta["builtin"] == "builtin-sg3" and meta["kimg"] > 40
    assert meta["quality"]["model"]["fd16"] < 25          # untrained: 99.2 (MODEL_CARD-sg3.md)


def test_stylegan3_commands_work_offline_on_it(tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", "builtin-sg3", "--seeds", 3, "--outdir", tmp_path / "a")
    assert code == 0, err
    code, err = run(capsys, "generate", "--network", "builtin-sg3", "--seeds", 3, "--translate", "0.25,0",
                    "--outdir", tmp_path / "b")
    assert code == 0, err
    a, b = png(tmp_path / "a" / "seed0003.png").astype(float), png(tmp_path / "b" / "seed0003.png").astype(float)
    assert np.abs(a - b).mean() > 5                      # the camera moved
    with pytest.raises(SystemExit) as exit_info:
        main(["metrics", "--network", "builtin-sg3", "--metrics", "eqt50k_int", "--num-gen", "16"])
    out = capsys.readouterr()
    assert exit_info.value.code == 0, out.err
    eqt = json.loads(out.out.strip().splitlines()[-1])["results"]["eqt16_int"]
    assert eqt > 40                                      # translation equivariant (55 dB measured at 64 samples)
