"""Image datasets: the reader that training and metrics share (NVIDIA's folder/zip layout with an
optional ``dataset.json`` of labels) and the dataset tool behind ``stylegan dataset``."""

from .dataset import ImageDataset, sample_indices
from .dataset_tool import DatasetReport, make_dataset

__all__ = ["DatasetReport", "ImageDataset", "make_dataset", "sample_indices"]
