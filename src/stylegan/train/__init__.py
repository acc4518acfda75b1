"""Training: ADA augmentation, the StyleGAN2/3 loss, and the training loop with exact resume and
multi-process data parallelism (``stylegan train``; docs/training.md). Datasets are in :mod:`stylegan.data`."""

from .augment import PRESETS as AUGMENT_PRESETS
from .augment import AugmentPipe
from .checkpoint import find_latest_state, load_training_state
from .config import TrainingOptions
from .loop import RunResult, Snapshot, SnapshotMetrics, TrainingRun, training_loop
from .loss import StyleGAN2Loss

__all__ = ["AUGMENT_PRESETS", "AugmentPipe", "RunResult", "Snapshot", "SnapshotMetrics", "StyleGAN2Loss",
           "TrainingOptions", "TrainingRun", "find_latest_state", "load_training_state", "training_loop"]
