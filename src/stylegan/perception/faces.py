"""Offline face detection with five landmarks: MTCNN (Zhang et al. 2016, "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks"), implemented here from the paper, with the
trained weights that the ``facenet-pytorch`` package ships (MIT licence, Copyright (c) 2019 Timothy Esler;
the weights are the original MTCNN models converted to PyTorch).

The weights are read from the installed package's ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` with
``torch.load(weights_only=True)``, located through ``importlib.metadata`` without importing the package
(its import needs torchvision and pins torch < 2.3). Install it with ``pip install --no-deps
facenet-pytorch``: nothing is downloaded at run time.

The cascade (paper Sec. 2.1): an image pyramid (scale factor 0.709, smallest face 20 px) goes through the
fully convolutional P-Net (12x12 windows, stride 2); candidates are merged by non-maximum suppression,
corrected by the predicted box offsets and made square; R-Net (24x24 crops) and O-Net (48x48 crops)
reject and refine them, and O-Net gives the five landmarks: left eye, right eye, nose, left and right
mouth corner (left = the image's left).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, UserInputError

PACKAGE = "facenet-pytorch"
WEIGHT_FILES = {"pnet": "facenet_pytorch/data/pnet.pt", "rnet": "facenet_pytorch/data/rnet.pt",
                "onet": "facenet_pytorch/data/onet.pt"}
INSTALL_HINT = f"pip install --no-deps {PACKAGE}"


class FaceDetectorUnavailable(UserInputError):
    """No face detector weights are installed."""


class NoFaceFound(UserInputError):
    """The detector found no face (or not the one asked for)."""


@dataclass(frozen=True)
class DetectionConfig:
    min_face_size: float = 20.0            # smallest face searched for, in pixels
    scale_factor: float = 0.709            # image pyramid step
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)   # face probability needed by P-, R-, O-Net
    nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7)  # per scale, all scales, R, O


@dataclass
class Face:
    box: np.ndarray                        # [4] x1, y1, x2, y2 in pixels
    score: float                           # O-Net face probability
    landmarks: np.ndarray                  # [5, 2] (x, y): left eye, right eye, nose, left/right mouth corner

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


def _conv_prelu(name: str, cin: int, cout: int, k: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{name}", nn.Conv2d(cin, cout, k)), (f"prelu{name}", nn.PReLU(cout))]


class PNet(nn.Module):
    """Proposal network: 12x12 window -> face probability and box offsets (fully convolutional)."""

    def __init__(self):
        super().__init__()
        for name, m in _conv_prelu("1", 3, 10, 3) + _conv_prelu("2", 10, 16, 3) + _conv_prelu("3", 16, 32, 3):
            self.add_module(name, m)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu1(self.conv1(x))
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network: 24x24 crop -> face probability and box offsets."""

    def __init__(self):
        super().__init__()
        for name, m in _conv_prelu("1", 3, 28, 3) + _conv_prelu("2", 28, 48, 3) + _conv_prelu("3", 48, 64, 2):
            self.add_module(name, m)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network: 48x48 crop -> face probability, box offsets and five landmarks."""

    def __init__(self):
        super().__init__()
        layers = (_conv_prelu("1", 3, 32, 3) + _conv_prelu("2", 32, 64, 3) + _conv_prelu("3", 64, 64, 3)
                  + _conv_prelu("4", 64, 128, 2))
        for name, m in layers:
            self.add_module(name, m)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """The converted dense layers read the feature map in (width, height, channel) order."""
    return x.permute(0, 3, 2, 1).flatten(1)


def mtcnn_weight_paths() -> dict[str, Path] | None:
    """The installed package's weight files (name -> path), or None if it is not installed."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    paths = {name: Path(str(dist.locate_file(rel))) for name, rel in WEIGHT_FILES.items()}
    return paths if all(p.is_file() for p in paths.values()) else None


def detector_available() -> bool:
    return mtcnn_weight_paths() is not None


class MTCNN(nn.Module):
    """The three networks with the shipped weights; :meth:`detect` runs the cascade on one image."""

    def __init__(self, config: DetectionConfig = DetectionConfig()):
        super().__init__()
        self.config = config
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()

    @classmethod
    def load(cls, config: DetectionConfig = DetectionConfig(), device: torch.device | str = "cpu") -> "MTCNN":
        """From the installed ``facenet-pytorch`` weights; :class:`FaceDetectorUnavailable` without them."""
        paths = mtcnn_weight_paths()
        if paths is None:
            raise FaceDetectorUnavailable(f"face detection needs the MTCNN weights of {PACKAGE}: {INSTALL_HINT}")
        model = cls(config)
        for name, path in paths.items():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                getattr(model, name).load_state_dict(state)
            except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt or unexpected files
                raise CheckpointError(f"{path}: not the MTCNN {name} weights we expect "
                                      f"({str(exc).splitlines()[0]})") from None
        return model.to(device).eval().requires_grad_(False)

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in ``image`` ([H, W, 3] uint8 RGB), largest first."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.dtype != np.uint8:
            raise UserInputError(f"face detection needs an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
        rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
        device = next(self.parameters()).device
        img = (torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].to(device, torch.float32)
               - 127.5) * 0.0078125
        boxes = self._propose(img)
        boxes = self._refine(img, boxes)
        faces = self._output(img, boxes)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _propose(self, img: torch.Tensor) -> torch.Tensor:
        """Stage 1: P-Net over the image pyramid -> square candidate boxes [K, 5] (x1, y1, x2, y2, score)."""
        cfg = self.config
        h, w = img.shape[2:]
        scale = 12.0 / cfg.min_face_size
        side = min(h, w) * scale
        found = []
        while side >= 12:
            size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
            prob, reg = self.pnet(_resize(img, size))
            keep = torch.nonzero(prob[0] > cfg.thresholds[0])
            if len(keep):
                yy, xx = keep[:, 0], keep[:, 1]
                score = prob[0, yy, xx]
                x1, y1 = (2 * xx + 1) / scale, (2 * yy + 1) / scale
                x2, y2 = (2 * xx + 12) / scale, (2 * yy + 12) / scale
                b = torch.stack([x1, y1, x2, y2, score], 1)
                b = torch.cat([b, reg[0, :, yy, xx].t()], 1)
                found.append(b[_nms(b[:, :4], b[:, 4], cfg.nms_thresholds[0])])
            scale *= cfg.scale_factor
            side *= cfg.scale_factor
        if not found:
            return img.new_zeros([0, 5])
        b = torch.cat(found)
        b = b[_nms(b[:, :4], b[:, 4], cfg.nms_thresholds[1])]
        return _square(_regress(b[:, :4], b[:, 5:9], b[:, 4]))

    def _refine(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Stage 2: R-Net on 24x24 crops: reject, suppress, regress, square."""
        if not len(boxes):
            return boxes
        prob, reg = self.rnet(_crops(img, boxes, 24))
        keep = prob > self.config.thresholds[1]
        boxes, reg, prob = boxes[keep], reg[keep], prob[keep]
        keep = _nms(boxes[:, :4], prob, self.config.nms_thresholds[2])
        return _square(_regress(boxes[keep, :4], reg[keep], prob[keep]))

    def _output(self, img: torch.Tensor, boxes: torch.Tensor) -> list[Face]:
        """Stage 3: O-Net on 48x48 crops: final boxes and the five landmarks."""
        if not len(boxes):
            return []
        prob, reg, points = self.onet(_crops(img, boxes, 48))
        keep = prob > self.config.thresholds[2]
        boxes, reg, prob, points = boxes[keep], reg[keep], prob[keep], points[keep]
        bw = (boxes[:, 2] - boxes[:, 0])[:, None]
        bh = (boxes[:, 3] - boxes[:, 1])[:, None]
        lm = torch.stack([boxes[:, :1] + bw * points[:, :5], boxes[:, 1:2] + bh * points[:, 5:]], dim=2)
        final = _regress(boxes[:, :4], reg, prob)
        keep = _nms(final[:, :4], prob, self.config.nms_thresholds[3], mode="min")
        return [Face(final[i, :4].cpu().numpy().astype(np.float64), float(prob[i]),
                     lm[i].cpu().numpy().astype(np.float64)) for i in keep.tolist()]


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area filter when shrinking (as the paper's pyramid), bilinear when enlarging."""
    if size[0] <= img.shape[2] and size[1] <= img.shape[3]:
        return F.interpolate(img, size=size, mode="area")
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False)


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Each box cut out of the image (zero where it leaves the image) and resized to ``size``^2."""
    h, w = img.shape[2:]
    out = []
    for x1, y1, x2, y2 in boxes[:, :4].round().to(torch.int64).tolist():
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        patch = img.new_zeros([1, 3, y2 - y1, x2 - x1])
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if sx2 > sx1 and sy2 > sy1:
            patch[:, :, sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[:, :, sy1:sy2, sx1:sx2]
        out.append(_resize(patch, (size, size)))
    return torch.cat(out)


def _regress(boxes: torch.Tensor, reg: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Apply the predicted offsets (fractions of the box size) -> [K, 5] boxes with scores."""
    wh = torch.cat([boxes[:, 2:4] - boxes[:, 0:2]] * 2, 1)
    return torch.cat([boxes + reg * wh, score[:, None]], 1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (the next network sees square crops)."""
    c = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    side = (boxes[:, 2:4] - boxes[:, 0:2]).max(1).values[:, None]
    return torch.cat([c - side / 2, c + side / 2, boxes[:, 4:5]], 1)


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression: indices kept, best first (overlap = IoU, or intersection over
    the smaller box for ``mode='min'``)."""
    order = torch.argsort(scores, descending=True)
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lt = torch.maximum(boxes[i, :2], boxes[rest, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clamp(min=0).prod(1)
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom.clamp(min=1e-12) <= threshold]
    return torch.tensor(keep, dtype=torch.int64)


_cached: MTCNN | None = None


def detect_faces(image: np.ndarray, config: DetectionConfig = DetectionConfig()) -> list[Face]:
    """Every face in ``image`` ([H, W, 3] uint8), largest first (the networks are loaded once per process)."""
    global _cached
    if _cached is None or _cached.config != config:
        _cached = MTCNN.load(config)
    return _cached.detect(image)


def face_landmarks(image: np.ndarray, face: int | None = None) -> np.ndarray:
    """Five landmarks [5, 2] of the largest face (or of face number ``face``, 0 = largest) in ``image``."""
    faces = detect_faces(image)
    if not faces:
        raise NoFaceFound("no face found in the image")
    k = 0 if face is None else face
    if not 0 <= k < len(faces):
        raise NoFaceFound(f"--face {k}: the image has {len(faces)} face(s) (0 = the largest)")
    return faces[k].landmarks
