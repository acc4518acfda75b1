"""The top-level package: fast import, the notebook API, the version."""

import subprocess
import sys

import numpy as np


def test_import_is_light_and_lazy():
    code = "import sys, stylegan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # torch loads only when a model is used


def test_top_level_api_generates_like_the_cli(sg2_model, tmp_path):
    import stylegan
    from stylegan.cli.main import main
    images = stylegan.generate_images(str(sg2_model), seeds=[3, 5], truncation_psi=0.7, device="cpu")
    assert len(images) == 2 and images[0].size == (32, 32)
    try:
        main(["generate", "--network", str(sg2_model), "--seeds", "3,5", "--trunc", "0.7", "--device", "cpu",
              "--outdir", str(tmp_path)])
    except SystemExit as exc:
        assert exc.code == 0
    from PIL import Image
    assert np.array_equal(np.asarray(images[1]), np.asarray(Image.open(tmp_path / "seed0005.png")))
    assert stylegan.__version__
