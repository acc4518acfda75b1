"""What the page may ask for, with every number bounded: the request bodies of the explorer's API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ..latent.sampling import PSI_RANGE
from ..networks.options import NOISE_MODES
from ..latent.seeds import MAX_SEED

MAX_JSON_BYTES = 64 * 1024             # a render request is ~1 KB; this bounds abuse, not use
MAX_UPLOAD_BYTES = 8 * 1024 * 1024     # projected-w and directions .npz files
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # what an uploaded .npz may unpack to (compressed files)
MAX_UPLOAD_ROWS = 1024                 # latents per uploaded file
MAX_DIRECTIONS = 512                   # directions per uploaded file / SeFa run
MAX_EDITS = 32                         # direction sliders applied at once
MAX_STRENGTH = 100.0
MAX_TRANSLATE = 4.0                    # in units of half the image (StyleGAN3)
MAX_CLIENT_ID = 64
#: Pixels a canvas may be *rendered* at (after rounding to the model's step), ``serve --max-canvas-mp``:
#: 1920x1080 on every published model (a 1024² StyleGAN2 renders it at 2048x1280, 2.6 MP), not 2560x1440.
MAX_CANVAS_PIXELS = 3_000_000
Token = Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_ID, pattern=r"^[A-Za-z0-9_-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedLatent(Strict):
    """A point in the seed plane: ``seed`` blended bilinearly with ``seed + 1`` (``dx``), ``seed + 100``
    (``dy``) and ``seed + 101``, as NVIDIA's visualizer drags through latent space."""
    kind: Literal["seed"] = "seed"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    dx: float = Field(0.0, ge=0.0, le=1.0)
    dy: float = Field(0.0, ge=0.0, le=1.0)


class UploadLatent(Strict):
    """Row ``index`` of an uploaded latents file (a projection, ``--save-ws`` output, ...)."""
    kind: Literal["upload"]
    id: Token
    index: int = Field(0, ge=0, lt=MAX_UPLOAD_ROWS)


class Mix(Strict):
    """Style mixing: the ``layers`` (ws indices) come from ``seed``'s latent, all others from the main one."""
    seed: int = Field(..., ge=0, le=MAX_SEED)
    layers: list[Annotated[int, Field(ge=0, le=63)]] = Field(..., max_length=64)


class Edit(Strict):
    """Move ``strength`` along direction ``index`` of the direction set ``directions``."""
    directions: Token
    index: int = Field(..., ge=0, lt=MAX_DIRECTIONS)
    strength: float = Field(..., ge=-MAX_STRENGTH, le=MAX_STRENGTH)


def _latent_kind(value) -> str:
    kind = value.get("kind", "seed") if isinstance(value, dict) else getattr(value, "kind", "seed")
    return kind if kind in ("seed", "upload") else "seed"


class RenderRequest(Strict):
    """Everything that decides one image. ``client``/``seq`` let the server drop a render that a newer
    request from the same page has made stale."""
    model: str | None = Field(None, max_length=512)
    latent: Annotated[Annotated[SeedLatent, Tag("seed")] | Annotated[UploadLatent, Tag("upload")],
                      Discriminator(_latent_kind)] = Field(default_factory=SeedLatent)
    psi: float = Field(1.0, ge=PSI_RANGE[0], le=PSI_RANGE[1])
    cutoff: int | None = Field(None, ge=1, le=64)
    class_idx: int | None = Field(None, ge=0, le=1_000_000)
    noise_mode: Literal[NOISE_MODES] = "const"
    mix: Mix | None = None
    edits: list[Edit] = Field(default_factory=list, max_length=MAX_EDITS)
    translate: tuple[Annotated[float, Field(ge=-MAX_TRANSLATE, le=MAX_TRANSLATE)],
                     Annotated[float, Field(ge=-MAX_TRANSLATE, le=MAX_TRANSLATE)]] = (0.0, 0.0)
    rotate: float = Field(0.0, ge=-360.0, le=360.0)
    canvas: str | None = Field(None, max_length=32)          # 'WxH' as `--size` takes it; checked once, there
    extension: str | None = Field(None, max_length=16)       # StyleGAN1/2: tile | reflect | stretch (`--extend`)
    client: Token | None = None
    seq: int = Field(0, ge=0, le=2**53)


class SefaRequest(Strict):
    """Closed-form directions (SeFa) of the style layers ``layers`` (``'all'``, ``'coarse'``, ``'0-3'``, ...)."""
    model: str | None = Field(None, max_length=512)
    layers: str = Field("all", max_length=200)
    num: int = Field(10, ge=1, le=MAX_DIRECTIONS)
