"""The choices a synthesis call takes, importable without torch (the command line lists them in --help)."""

#: How per-pixel noise is drawn: 'const' = the stored maps, 'random' = fresh N(0, 1), 'none' = zero.
NOISE_MODES = ("const", "random", "none")

#: Implementations of the same math: 'fast' (polyphase resampling, folded passes, channels-last on CPUs)
#: and 'reference' (zero-stuffed upsampling, full-rate filtering, grouped convolutions for every batch,
#: NCHW, separate bias/activation/gain/clamp passes: NVIDIA's reference path, the baseline of the tests
#: and of ``benchmarks/inference.py``).
IMPLS = ("fast", "reference")

#: How StyleGAN1/2 continue their learned 4x4 constant (and constant noise maps) on a larger canvas; the
#: first is the default (it looked best on the built-in model: docs/canvas.md).
CONST_EXTENSIONS = ("tile", "reflect", "stretch")
