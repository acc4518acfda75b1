"""What a model file holds once loaded, whatever its format."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CheckpointError
from ..networks import Discriminator, Generator


@dataclass
class Checkpoint:
    """Networks and data read from one model file.

    ``G_ema`` is the generator every command uses (the exponential moving average of ``G``);
    ``augment`` holds the ADA state ``{'p': float, 'settings': {...}}``; ``training_set_kwargs``
    is plain data (its ``class_name`` is never imported); ``metadata`` is free-form JSON data
    (training progress, model card, source).
    """

    G_ema: Generator | None = None
    G: Generator | None = None
    D: Discriminator | None = None
    augment: dict | None = None
    training_set_kwargs: dict | None = None
    metadata: dict = field(default_factory=dict)
    source_format: str = "unknown"
    path: str | None = None

    def generator(self) -> Generator:
        G = self.G_ema if self.G_ema is not None else self.G
        if G is None:
            raise _missing(self, "generator")
        return G

    def discriminator(self) -> Discriminator:
        if self.D is None:
            raise _missing(self, "discriminator")
        return self.D


def _missing(ckpt: Checkpoint, what: str):
    return CheckpointError(f"{ckpt.path or 'the model file'} contains no {what}")
