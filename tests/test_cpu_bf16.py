"""``--bf16`` on the CPU: allowed where the CPU has native bf16 (and says which), one clear line where it
does not, and the bf16 layers really run in bfloat16 with images close to fp32."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.cli import run
from support.models import reference_checkpoint, reference_npz

from stylegan import devices
from stylegan.errors import UserInputError

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 {}\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert devices.cpu_bf16_kernel(FLAGS.format("avx512f avx512_bf16 amx_bf16 amx_tile")) == "AMX-BF16"
    assert devices.cpu_bf16_kernel(FLAGS.format("avx512f avx512_bf16")) == "AVX512-BF16"
    assert devices.cpu_bf16_kernel(FLAGS.format("avx512f")) is None
    assert devices.cpu_bf16_kernel("") is None


def test_without_native_bf16_the_cpu_refuses_with_one_clear_line(monkeypatch, sg2_model, tmp_path, capsys):
    monkeypatch.setattr(devices, "cpu_bf16_kernel", lambda cpuinfo=None: None)
    with pytest.raises(UserInputError, match="needs native bfloat16 .* emulated and slower than fp32"):
        devices.half_dtype("bf16", torch.device("cpu"))
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "1", "--bf16", "--device", "cpu",
                    "--outdir", tmp_path)
    assert code == 1 and err.startswith("error: --bf16 on the CPU needs native bfloat16") and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*.png"))


def test_with_native_bf16_generate_says_which_kernel(monkeypatch, sg2_model, tmp_path, capsys):
    monkeypatch.setattr(devices, "cpu_bf16_kernel", lambda cpuinfo=None: "AVX512-BF16")
    assert devices.half_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(UserInputError, match="--fp16 needs a CUDA GPU"):
        devices.half_dtype("fp16", torch.device("cpu"))
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "1", "--bf16", "--device", "cpu",
                    "--outdir", tmp_path)
    assert code == 0 and "bf16 on the CPU: AVX512-BF16 instructions" in err and (tmp_path / "seed0001.png").exists()


def test_the_bf16_layers_run_in_bfloat16_close_to_fp32():
    """NVIDIA's StyleGAN2 reference network (num_fp16_res=4, conv_clamp=256): >= 35 dB from fp32."""
    G = reference_checkpoint("sg2").G_ema
    ws = torch.from_numpy(np.load(reference_npz("sg2"))["ref/ws_psi07"][:2])
    seen = set()
    hook = G.synthesis.b64.conv1.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    with torch.no_grad():
        fp32 = G.synthesis(ws, noise_mode="const")
        bf16 = G.set_half_dtype(torch.bfloat16).synthesis(ws, noise_mode="const")
    hook.remove()
    assert seen == {torch.float32, torch.bfloat16} and bf16.dtype == torch.float32
    mse = float((bf16.double() - fp32.double()).square().mean())
    assert 0 < mse and 10 * math.log10(4 / mse) >= 35
