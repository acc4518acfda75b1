"""Dataset tool and reader: layout, labels, crops, colour modes, bad files, the deterministic stream."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from stylegan.errors import DatasetError, UserInputError
from stylegan.data.dataset import ImageDataset, sample_indices
from stylegan.data.dataset_tool import make_dataset


def write(path, array, mode=None, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path, format=fmt)
    return path


@pytest.fixture
def messy_folder(tmp_path):
    """A realistic source folder: RGBA PNGs, a JPEG, a wide image, junk and a corrupt file."""
    src = tmp_path / "src"
    rgba = np.zeros([40, 40, 4], np.uint8)
    rgba[10:30, 10:30] = [255, 0, 0, 255]                     # opaque red square on transparency
    write(src / "a.png", rgba, "RGBA")
    write(src / "b.jpg", np.full([50, 50, 3], 90), "RGB", "JPEG")
    write(src / "sub" / "c.png", np.full([30, 60, 3], 200), "RGB")   # wide
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return src


def test_folder_to_zip_with_crop_alpha_background_and_a_report_of_bad_files(messy_folder, tmp_path):
    dest = tmp_path / "out.zip"
    report = make_dataset(messy_folder, dest, resolution=16, background="white")
    assert report.written == 3 and report.resolution == 16 and report.channels == 3
    skipped = dict(report.skipped)
    assert set(skipped) == {"notes.txt", "broken.png"}
    assert "unreadable" in skipped["broken.png"]
    with zipfile.ZipFile(dest) as z:
        names = sorted(z.namelist())
        assert names == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png", "dataset.json"]
        assert json.loads(z.read("dataset.json"))["labels"] is None
    ds = ImageDataset(dest)
    imgs = ds.get_images([0, 1, 2])
    assert imgs.shape == (3, 3, 16, 16)
    assert tuple(imgs[0, :, 0, 0]) == (255, 255, 255)         # transparent corner -> white background
    assert imgs[0, 0, 8, 8] > 200 and imgs[0, 1, 8, 8] < 60     # red centre
    assert not list(tmp_path.glob(".out.zip*"))                 # no temp file left behind


def test_pad_keeps_the_whole_image_and_fills_with_the_background(tmp_path):
    write(tmp_path / "src" / "wide.png", np.full([8, 16, 3], 0), "RGB")
    report = make_dataset(tmp_path / "src", tmp_path / "out", resolution=16, transform="pad", background="#ff0000")
    assert report.written == 1
    img = np.asarray(Image.open(tmp_path / "out" / "00000" / "img00000000.png"))
    assert tuple(img[0, 8]) == (255, 0, 0) and tuple(img[8, 8]) == (0, 0, 0)


def test_labels_from_sub_folders_become_one_hot_classes(tmp_path):
    for cls, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            write(tmp_path / "src" / cls / f"{i}.png", np.full([8, 8], value), "L")
    report = make_dataset(tmp_path / "src", tmp_path / "d.zip", mode="gray", labels="folders")
    assert report.class_names == ["cat", "dog"] and report.channels == 1
    ds = ImageDataset(tmp_path / "d.zip", use_labels=True)
    assert ds.label_dim == 2 and ds.class_names == ["cat", "dog"]
    labels = ds.get_labels(range(6))
    images = ds.get_images(range(6))
    for lab, img in zip(labels, images):
        assert img.shape == (1, 8, 8)
        assert (lab.argmax() == 1) == (img.mean() > 100)


def test_non_power_of_two_sizes_get_an_actionable_message(tmp_path):
    write(tmp_path / "src" / "x.png", np.zeros([100, 100, 3]), "RGB")
    with pytest.raises(DatasetError, match=r"not a power of two.*--resolution 64"):
        make_dataset(tmp_path / "src", tmp_path / "d.zip")
    with pytest.raises(DatasetError, match="power-of-two"):
        ImageDataset(tmp_path / "src")
    with pytest.raises(UserInputError, match="already exists"):
        (tmp_path / "taken.zip").write_bytes(b"x")
        make_dataset(tmp_path / "src", tmp_path / "taken.zip", resolution=64)


def test_rgba_mode_keeps_alpha(tmp_path):
    rgba = np.zeros([16, 16, 4], np.uint8)
    rgba[4:12, 4:12] = [0, 255, 0, 255]
    write(tmp_path / "src" / "e.png", rgba, "RGBA")
    make_dataset(tmp_path / "src", tmp_path / "d.zip", mode="rgba")
    img = ImageDataset(tmp_path / "d.zip").get_images([0])[0]
    assert img.shape == (4, 16, 16) and img[3, 0, 0] == 0 and img[3, 8, 8] == 255


def test_mirror_doubles_the_dataset_with_flipped_copies(tmp_path):
    arr = np.zeros([8, 8, 3], np.uint8)
    arr[:, :2] = 255
    write(tmp_path / "src" / "0.png", arr, "RGB")
    ds = ImageDataset(tmp_path / "src", mirror=True)
    assert len(ds) == 2
    a, b = ds.get_images([0, 1])
    assert np.array_equal(b, a[:, :, ::-1])
    x, _ = ds.get_batch([0, 1])
    assert x.min() == -1 and x.max() == 1


def test_the_training_stream_is_a_permutation_per_epoch_and_readable_from_anywhere():
    full = sample_indices(seed=5, start=0, count=50, dataset_size=20)
    for epoch in range(2):
        assert sorted(full[epoch * 20:(epoch + 1) * 20]) == list(range(20))
    assert not np.array_equal(full[:20], full[20:40])
    parts = np.concatenate([sample_indices(5, s, 7, 20) for s in range(0, 49, 7)])
    assert np.array_equal(parts[:49], full[:49])
    assert not np.array_equal(sample_indices(6, 0, 20, 20), full[:20])


def test_sixteen_bit_greyscale_is_scaled_and_exif_rotation_applied(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full([8, 8], 32768, np.uint16)).save(src / "a16.png")   # mid-grey in 16 bits
    tall = np.zeros([16, 8, 3], np.uint8)
    tall[:4] = 255                                                           # white top rows
    exif = Image.Exif()
    exif[0x0112] = 6                                                         # "rotate 90 CW to display"
    Image.fromarray(tall).save(src / "b.jpg", exif=exif, quality=100)
    make_dataset(src, tmp_path / "d.zip", resolution=8, mode="gray", transform="pad", background="black")
    grey, photo = ImageDataset(tmp_path / "d.zip").get_images([0, 1])
    assert abs(int(grey[0, 4, 4]) - 128) <= 1
    assert photo[0, 4, 7] > 200 and photo[0, 4, 0] < 50                      # the white band is now on the right
