"""The projection losses: the no-download loss for real, and the two LPIPS loading paths with local files
in the real formats (a TorchScript archive with NVIDIA's call signature; torchvision/LPIPS state dicts)."""

from __future__ import annotations

import functools
import http.server
import pickle
import threading

import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import CheckpointError
from stylegan.perception import lpips as P


def _smooth_images(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([n, 3, size // 4, size // 4], generator=g)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)


def test_no_download_loss_is_zero_for_equal_images_and_grows_with_the_difference():
    loss = P.NoDownloadLoss()
    a = _smooth_images()
    assert torch.allclose(loss(a, a), torch.zeros(2), atol=1e-6)
    noise = torch.randn_like(a)
    d = [loss(a, (a + s * noise).clamp(-1, 1)) for s in (0.05, 0.2, 0.5)]
    assert (d[0] < d[1]).all() and (d[1] < d[2]).all()


def test_no_download_loss_uses_the_discriminator_and_gives_gradients(sg2_model):
    from stylegan.checkpoints import load_network
    D = load_network(sg2_model).D
    loss = P.NoDownloadLoss(D)
    assert "discriminator" in loss.name and "SSIM" in loss.name
    assert "discriminator" not in P.NoDownloadLoss().name
    a = _smooth_images()
    b = _smooth_images(seed=1).requires_grad_(True)
    feats = loss.features(a)
    assert len(feats["d"]) == len(D.block_resolutions)
    loss.distance(feats, loss.features(b)).sum().backward()
    assert b.grad is not None and b.grad.abs().sum() > 0
    # The feature term adds to the pixel terms: the full loss is larger than without D.
    assert (loss(a, b.detach()) > P.NoDownloadLoss()(a, b.detach())).all()


def test_ssim_is_one_for_identical_images_and_low_for_unrelated_ones():
    w = P._gaussian_window(11, 1.5)
    a, b = _smooth_images(seed=0), _smooth_images(seed=1)
    assert torch.allclose(P._ssim(a, a, w), torch.ones(2), atol=1e-5)
    assert (P._ssim(a, b, w) < 0.5).all()
    assert (P._ssim(a, -a, w) < 0).all()


class _StandInVGG(torch.nn.Module):
    """Same call signature and contract as NVIDIA's vgg16.pt: images in [0, 255] -> LPIPS features [N, F].
    The last feature is the input's height so the test can see the resizing."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if resize_images:
            x = F.interpolate(x, size=(224, 224), mode="area")
        f = F.adaptive_avg_pool2d(self.conv(x / 255.0), 4).flatten(1)
        size = torch.full([x.shape[0], 1], float(x.shape[2]), device=x.device)
        peak = x.amax(dim=[1, 2, 3]).unsqueeze(1)
        if return_lpips:
            return torch.cat([f, size, peak], dim=1)
        return f


@pytest.fixture(scope="module")
def vgg16_pt(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pt"
    torch.jit.save(torch.jit.script(_StandInVGG()), str(path))
    return path


def test_nvidia_torchscript_file_is_called_like_nvidia_does(vgg16_pt):
    loss = P.load_vgg16(vgg16_pt)
    assert isinstance(loss, P.NvidiaVGG16) and "NVIDIA TorchScript" in loss.name
    img = torch.ones([2, 3, 512, 512])                 # white, larger than 256 px
    f = loss.features(img)
    assert f[:, -2].tolist() == [256.0, 256.0]          # area-downsampled to 256, resize_images=False
    assert torch.allclose(f[:, -1], torch.full([2], 255.0))  # [-1, 1] -> [0, 255]
    small = loss.features(torch.zeros([1, 3, 64, 64]))
    assert small[0, -2] == 64                           # smaller images are left alone
    a, b = loss.features(_smooth_images()), loss.features(_smooth_images(seed=1))
    assert torch.allclose(loss.distance(a, b), (a - b).square().sum(1))
    grey = loss.features(torch.zeros([1, 1, 32, 32]))   # grey models: channels repeated
    assert grey.shape == small.shape


def test_torchscript_with_another_signature_is_refused(tmp_path):
    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)
    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(Other()), str(path))
    with pytest.raises(CheckpointError, match="does not behave like NVIDIA's vgg16.pt"):
        P.load_vgg16(path)


def test_vgg_from_a_url_is_downloaded_once_into_the_cache(vgg16_pt, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(vgg16_pt.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/vgg16.pt"
    try:
        first = P.load_vgg16(url)
    finally:
        server.shutdown()
        server.server_close()
    assert list((tmp_path / "cache" / "downloads").glob("*vgg16.pt"))
    second = P.load_vgg16(url)                           # the server is gone: served from the cache
    x = _smooth_images()
    assert torch.equal(first.features(x), second.features(x))


def _lpips_reference(vgg: torch.nn.Sequential, lin: list[torch.Tensor], a: torch.Tensor, b: torch.Tensor):
    """LPIPS written out from the paper (Eq. 1), independently of the module under test."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)
    xa, xb = (a - shift) / scale, (b - shift) / scale
    total = torch.zeros(a.shape[0])
    k = 0
    for i, layer in enumerate(vgg):
        xa, xb = layer(xa), layer(xb)
        if i in (3, 8, 15, 22, 29):
            na = xa / (xa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            nb = xb / (xb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total += ((na - nb).square() * lin[k].reshape(1, -1, 1, 1)).sum(1).mean(dim=[1, 2])
            k += 1
    return total


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    """A torchvision-layout VGG16 state dict (random weights, real names and shapes) and LPIPS linear weights."""
    torch.manual_seed(0)
    vgg = P._vgg16_features()
    for m in vgg:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    state = {f"features.{k}": v for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros([8, 8])   # present in torchvision files, unused
    root = tmp_path_factory.mktemp("tv")
    torch.save(state, root / "vgg16-397923af.pth")
    lin = [torch.rand(c) for c in (64, 128, 256, 512, 512)]
    torch.save({f"lin{k}.model.1.weight": w.reshape(1, -1, 1, 1) for k, w in enumerate(lin)}, root / "vgg.pth")
    return root / "vgg16-397923af.pth", root / "vgg.pth", vgg, lin


def test_torchvision_vgg16_with_lpips_weights_computes_lpips(torchvision_files):
    vgg_path, lin_path, vgg, lin = torchvision_files
    loss = P.load_vgg16(vgg_path, lin_path)
    assert isinstance(loss, P.LPIPSVGG16) and "LPIPS linear layers" in loss.name
    a, b = _smooth_images(size=32), _smooth_images(size=32, seed=1)
    with torch.no_grad():
        expected = _lpips_reference(vgg.eval(), lin, a, b)
        got = loss(a, b)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
    unweighted = P.load_vgg16(vgg_path)                  # baseline: every channel weighs 1
    assert "no LPIPS linear layers" in unweighted.name
    with torch.no_grad():
        assert torch.allclose(unweighted(a, b), _lpips_reference(vgg, [torch.ones_like(w) for w in lin], a, b),
                              rtol=1e-4)


def test_lpips_package_layout_is_accepted(torchvision_files, tmp_path):
    vgg_path, _, vgg, _ = torchvision_files
    taps = [(1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30))]
    sliced = {}
    for k, idx in taps:
        for i in idx:
            if isinstance(vgg[i], torch.nn.Conv2d):
                sliced[f"net.slice{k}.{i}.weight"] = vgg[i].weight
                sliced[f"net.slice{k}.{i}.bias"] = vgg[i].bias
    torch.save(sliced, tmp_path / "lpips_vgg.pth")
    a, b = _smooth_images(size=32), _smooth_images(size=32, seed=2)
    with torch.no_grad():
        assert torch.allclose(P.load_vgg16(tmp_path / "lpips_vgg.pth")(a, b), P.load_vgg16(vgg_path)(a, b))


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", ["garbage", "pickle", "wrong-keys"])
def test_bad_vgg_files_are_refused(tmp_path, content, capsys):
    path = tmp_path / "vgg.pth"
    if content == "garbage":
        path.write_bytes(b"not a model at all")
    elif content == "pickle":
        with open(path, "wb") as f:
            pickle.dump({"features.0.weight": _Evil()}, f)
    else:
        torch.save({"foo": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError):
        P.load_vgg16(path)
    assert "must never run" not in capsys.readouterr().out


def test_load_perceptual_defaults_to_the_no_download_loss(monkeypatch, vgg16_pt):
    monkeypatch.delenv(P.VGG_ENV, raising=False)
    assert isinstance(P.load_perceptual(), P.NoDownloadLoss)
    monkeypatch.setenv(P.VGG_ENV, str(vgg16_pt))
    assert isinstance(P.load_perceptual(), P.NvidiaVGG16)
    with pytest.raises(CheckpointError, match="not found"):
        P.load_perceptual(vgg="/no/such/vgg16.pt")


@pytest.mark.parametrize("img_shape", [(16, 32), (32, 16), None])
def test_no_download_loss_uses_the_discriminator_on_non_square_models(img_shape):
    from support.models import make_tiny_checkpoint
    ck = make_tiny_checkpoint("stylegan2", resolution=32, img_shape=img_shape)
    img = ck.G_ema(torch.randn(2, ck.G_ema.z_dim), None)
    assert tuple(img.shape[2:]) == ck.D.img_shape
    feats = P.NoDownloadLoss(ck.D).features(img)
    assert len(feats["d"]) == len(ck.D.block_resolutions)
    assert all(min(p.shape[2:]) >= 16 for p in feats["pyramid"])
    assert len(P.NoDownloadLoss(ck.D).features(img.transpose(2, 3))["d"]) == (img_shape is None) * 3


def test_lpips_downsampling_keeps_the_aspect_ratio_and_squares_unchanged():
    shapes = {(1024, 512): (256, 128), (512, 1024): (128, 256), (256, 1024): (64, 256), (512, 256): (256, 128),
              (128, 256): (128, 256), (512, 512): (256, 256), (200, 100): (200, 100)}
    for (h, w), want in shapes.items():
        assert tuple(P._area_downsample(torch.zeros(1, 3, h, w)).shape[2:]) == want
    for size in (257, 300, 512, 1024):
        x = torch.rand(1, 3, size, size)
        assert torch.equal(P._area_downsample(x), F.interpolate(x, size=(256, 256), mode="area"))
