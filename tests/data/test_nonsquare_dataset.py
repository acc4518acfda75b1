"""Non-square datasets (``--resolution WxH``) from real images: the 32x32 emoji of tests/assets padded to
64x32 and 32x64 and cropped to 32x16 and 16x32, their pixels checked against the square dataset of the
same files (padding to a 2:1 canvas of the long side and cropping to the short side need no resize)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stylegan.data.dataset import ImageDataset
from stylegan.data.dataset_tool import make_dataset
from stylegan.errors import DatasetError, UserInputError

EMOJI = Path(__file__).parents[1] / "assets" / "emoji-unseen"


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """The emoji as a square dataset at their own 32x32: what every crop/pad is compared with."""
    out = tmp_path_factory.mktemp("sq") / "sq.zip"
    make_dataset(EMOJI, out, resolution=32, labels="none")
    return ImageDataset(out).get_images(range(8))


@pytest.mark.parametrize("size, transform", [((32, 64), "pad"), ((64, 32), "pad"),
                                             ((16, 32), "center-crop"), ((32, 16), "center-crop")])
def test_pad_and_crop_to_a_rectangle(tmp_path, square, size, transform):
    h, w = size                                              # (H, W): --resolution WxH
    dest = tmp_path / "d.zip"
    report = make_dataset(EMOJI, dest, resolution=size, transform=transform, labels="none")
    assert (report.written, report.shape, report.resolution, report.size_text) == (8, size, max(size), f"{w}x{h}")
    with zipfile.ZipFile(dest) as z:
        assert json.loads(z.read("dataset.json"))["img_shape"] == [h, w]
    ds = ImageDataset(dest)
    assert (ds.shape, ds.resolution, ds.describe()["img_shape"]) == (size, max(size), [h, w])
    images = ds.get_images(range(8))
    assert images.shape == (8, 3, h, w)
    if transform == "center-crop":                           # the centre window of each emoji, untouched
        top, left = (32 - h) // 2, (32 - w) // 2
        assert np.array_equal(images, square[:, :, top:top + h, left:left + w])
    else:                                                     # the whole emoji between white bands
        top, left = (h - 32) // 2, (w - 32) // 2
        assert np.array_equal(images[:, :, top:top + 32, left:left + 32], square)
        band = images[:, :, :top] if h > w else images[:, :, :, :left]
        assert band.size and (band == 255).all()


def test_letterbox_and_bad_shapes(tmp_path):
    out = tmp_path / "wide.zip"
    make_dataset(EMOJI, out, resolution=(16, 64), transform="center-crop-wide", aspect=2.0, labels="none")
    img = ImageDataset(out).get_images([0])[0].astype(int)
    assert img.shape == (3, 16, 64)
    assert (img[:, :, :16] == 255).all() and (img[:, :, 48:] == 255).all()     # 2:1 window letterboxed in 4:1
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "cat.png").write_bytes((EMOJI / "cat.png").read_bytes())
    with pytest.raises(DatasetError, match=r"cat.png: not of the 32x16 aspect \(32x32\); use --transform"):
        make_dataset(tmp_path / "one", tmp_path / "none.zip", resolution=(16, 32), transform="none", labels="none")
    for bad in [(16, 80), (8, 64), (4, 4 * 1)]:
        with pytest.raises((UserInputError, DatasetError), match="powers of two|power of two"):
            make_dataset(EMOJI, tmp_path / "bad.zip", resolution=bad, labels="none")
