"""Training: datasets (``stylegan dataset``), ADA augmentation, the StyleGAN2/3 loss, and the training
loop with exact resume and multi-process data parallelism (``stylegan train``; docs/training.md)."""

from .augment import PRESETS as AUGMENT_PRESETS
from .augment import AugmentPipe
from .checkpoint import find_latest_state, load_training_state
from .config import TrainingOptions
from .dataset import ImageDataset, sample_indices
from .dataset_tool import DatasetReport, make_dataset
from .loop import RunResult, training_loop
from .loss import StyleGAN2Loss

__all__ = ["AUGMENT_PRESETS", "AugmentPipe", "DatasetReport", "ImageDataset", "RunResult", "StyleGAN2Loss",
           "TrainingOptions", "find_latest_state", "load_training_state", "make_dataset", "sample_indices",
           "training_loop"]
