import math

import numpy as np
import pytest
import torch
from support.models import make_tiny_checkpoint

from stylegan.metrics import compute_metric
from stylegan.metrics.ppl import filtered_mean, path_length_samples, slerp
from stylegan.perception.detectors import load_detector


@pytest.fixture(scope="module")
def G():
    return make_tiny_checkpoint("stylegan2").G_ema


def test_slerp_walks_the_great_circle_at_constant_speed():
    a, b = torch.tensor([[3.0, 0, 0]]), torch.tensor([[0, 0, 2.0]])
    assert torch.allclose(slerp(a, b, torch.tensor([0.0])), torch.tensor([[1.0, 0, 0]]))
    assert torch.allclose(slerp(a, b, torch.tensor([1.0])), torch.tensor([[0, 0, 1.0]]), atol=1e-6)
    mid = slerp(a, b, torch.tensor([1 / 3]))
    assert torch.allclose(mid, torch.tensor([[math.cos(math.pi / 6), 0, math.sin(math.pi / 6)]]), atol=1e-6)


def test_filtered_mean_drops_the_extreme_percentiles():
    values = np.concatenate([np.full(990, 1.0), np.full(5, 1e6), np.full(5, -1e6)])
    assert filtered_mean(values) == 1.0
    assert filtered_mean(np.arange(101.0)) == pytest.approx(50.0)


def test_path_length_is_zero_when_the_image_ignores_the_latent(G, vgg_file):
    # Noise is re-drawn per batch but shared by the two images of a pair, so only w can change them.
    flat = make_tiny_checkpoint("stylegan2").G_ema
    with torch.no_grad():
        for name, p in flat.named_parameters():
            if name.endswith("affine.weight"):
                p.zero_()
    lpips = load_detector(vgg_file, kind="vgg16")
    assert np.all(path_length_samples(flat, lpips, num_samples=4) == 0)
    assert np.all(path_length_samples(G, lpips, num_samples=4) > 0)


def test_path_length_is_a_second_derivative_scale_independent_of_epsilon(G, vgg_file):
    lpips = load_detector(vgg_file, kind="vgg16")
    small = path_length_samples(G, lpips, num_samples=6, epsilon=1e-4)
    large = path_length_samples(G, lpips, num_samples=6, epsilon=4e-4)
    np.testing.assert_allclose(small, large, rtol=0.1)
    z_full_cropped = path_length_samples(G, lpips, num_samples=4, space="z", sampling="full", crop=True)
    assert np.all(np.isfinite(z_full_cropped)) and np.all(z_full_cropped > 0)


def test_ppl_metric_is_named_with_its_count_and_detector(G, vgg_file):
    result = compute_metric("ppl2_wend", G, num_gen=6, detector={"vgg16": vgg_file})
    assert result.metric == "ppl2_wend_6" and result.results["ppl2_wend_6"] > 0
    assert result.detector.startswith("vgg16-tiny.pt (sha256:")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_the_projection_perceptual_loss_gives_the_same_path_lengths(G, vgg_file):
    NvidiaVGG16 = pytest.importorskip("stylegan.perception.lpips").NvidiaVGG16  # the projection's LPIPS
    module = torch.jit.load(str(vgg_file))
    via_projection = NvidiaVGG16(module, source=vgg_file.name)
    via_detector = load_detector(vgg_file, kind="vgg16")
    np.testing.assert_allclose(path_length_samples(G, via_projection, num_samples=4),
                               path_length_samples(G, via_detector, num_samples=4), rtol=1e-5)
    result = compute_metric("ppl2_wend", G, num_gen=4, detector={"vgg16": via_projection})
    assert result.detector == via_projection.name


def test_the_cropped_ppl_is_refused_on_non_square_models_and_the_whole_image_one_runs(vgg_file):
    from stylegan.errors import UserInputError
    wide = make_tiny_checkpoint("stylegan2", img_shape=(16, 32)).G_ema
    for metric in ("ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend"):
        with pytest.raises(UserInputError, match=rf"{metric}_4: the cropped PPL .* square models only "
                                                 r"\(this one draws 32x16\); ppl2_wend"):
            compute_metric(metric, wide, num_gen=4, detector={"vgg16": vgg_file})
    assert compute_metric("ppl2_wend", wide, num_gen=4, detector={"vgg16": vgg_file}).results["ppl2_wend_4"] > 0
