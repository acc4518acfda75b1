"""StyleGAN 1/2/3 in pure PyTorch."""

__version__ = "0.1.0"
