"""The choices a synthesis call takes, importable without torch (the command line lists them in --help)."""

#: How per-pixel noise is drawn: 'const' = the stored maps, 'random' = fresh N(0, 1), 'none' = zero.
NOISE_MODES = ("const", "random", "none")

#: Implementations of the same math: 'fast' (polyphase resampling, folded passes, channels-last on CPUs)
#: and 'reference' (zero-stuffed upsampling, full-rate filtering, grouped convolutions for every batch,
#: NCHW, separate bias/activation/gain/clamp passes: NVIDIA's reference path, the baseline of the tests
#: and of ``benchmarks/inference.py``).
IMPLS = ("fast", "reference")
