"""Networks that look at images for us: NVIDIA's TorchScript detectors (Inception, VGG16) used by the
metrics, and the perceptual losses (LPIPS, a no-download loss) used by projection. TorchScript files
are read in one place (:mod:`stylegan.perception.torchscript`); pickled networks are refused."""
