"""Export a generator to ONNX or TorchScript, and check the exported file against our network.

What is exported (``what``):

- ``generator``: ``z [N, z_dim]`` (+ ``c [N, c_dim]`` if conditional) (+ ``psi`` scalar unless the
  truncation is baked in) -> ``img [N, C, H, W]`` (float, about [-1, 1]; ``img * 127.5 + 128``,
  clamped, gives 8-bit pixels);
- ``mapping``: the same inputs -> ``ws [N, num_ws, w_dim]`` (truncation applied);
- ``synthesis``: ``ws [N, num_ws, w_dim]`` -> ``img``.

Noise is the stored constant noise (``noise_mode='const'``), so an exported model is
deterministic. Modulated convolutions run in their batch-independent (non-fused) form, so one file
serves any batch size (``dynamic_batch``). StyleGAN3's Fourier input and filtered leaky ReLU are
plain PyTorch ops and export like the rest; its ``input.transform`` is baked in as it is at export.

ONNX export uses PyTorch's ``torch.export``-based exporter (packages ``onnx`` and ``onnxscript``) and
is verified with ``onnxruntime``; TorchScript export traces the network (``torch.jit.trace``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, UserInputError
from ..files import atomic_output
from ..networks import Generator

FORMATS = ("onnx", "torchscript")
PARTS = ("generator", "mapping", "synthesis")
DEFAULT_OPSET = 18
TOLERANCE = 1e-3          # max |exported - ours| accepted, relative to max(1, max |ours|) (images: about [-1, 1])


class _Truncation(nn.Module):
    """``ws = w_avg + psi * (ws - w_avg)`` on the first ``cutoff`` layers, ``psi`` a tensor (exportable)."""

    def __init__(self, num_ws: int, cutoff: int | None):
        super().__init__()
        mask = torch.zeros([1, num_ws, 1])
        mask[:, : num_ws if cutoff is None else cutoff] = 1
        self.register_buffer("mask", mask)

    def forward(self, ws: torch.Tensor, w_avg: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        coef = 1 + (psi.reshape(-1, 1, 1).to(ws.dtype) - 1) * self.mask
        return w_avg + (ws - w_avg) * coef


class ExportedGenerator(nn.Module):
    """The part of ``G`` to export, with plain tensor inputs and outputs."""

    def __init__(self, G: Generator, what: str = "generator", truncation_psi: float | None = None,
                 truncation_cutoff: int | None = None):
        super().__init__()
        if what not in PARTS:
            raise UserInputError(f"--what must be one of {', '.join(PARTS)}, got {what!r}")
        self.G = G
        self.what = what
        self.c_dim = G.c_dim
        self.baked_psi = truncation_psi
        self.truncation = _Truncation(G.num_ws, truncation_cutoff)

    def input_names(self) -> list[str]:
        if self.what == "synthesis":
            return ["ws"]
        names = ["z"] + (["c"] if self.c_dim else [])
        return names + ([] if self.baked_psi is not None else ["psi"])

    def output_name(self) -> str:
        return "ws" if self.what == "mapping" else "img"

    def example_inputs(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        G = self.G
        if self.what == "synthesis":
            z = torch.randn([batch, G.z_dim], generator=gen)
            c = torch.eye(G.c_dim)[torch.arange(batch) % G.c_dim] if G.c_dim else None
            with torch.no_grad():
                return (G.mapping(z, c),)
        out = [torch.randn([batch, G.z_dim], generator=gen)]
        if self.c_dim:
            out.append(torch.eye(self.c_dim)[torch.arange(batch) % self.c_dim])
        if self.baked_psi is None:
            out.append(torch.tensor(0.7))
        return tuple(out)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        G = self.G
        if self.what == "synthesis":
            return G.synthesis(inputs[0], noise_mode="const", fused_modconv=False, force_fp32=True)
        z = inputs[0]
        c = inputs[1] if self.c_dim else None
        psi = inputs[-1] if self.baked_psi is None else torch.tensor(float(self.baked_psi))
        ws = G.mapping(z, c)
        if hasattr(G.mapping, "w_avg"):
            ws = self.truncation(ws, G.mapping.w_avg, psi)
        if self.what == "mapping":
            return ws
        return G.synthesis(ws, noise_mode="const", fused_modconv=False, force_fp32=True)


@dataclass
class ExportResult:
    path: Path
    format: str
    what: str
    inputs: list[str]
    output: str
    max_abs_diff: float | None = None            # exported vs ours on a test batch (None: not verified)
    notes: list[str] = field(default_factory=list)


def export_generator(G: Generator, dest: str | os.PathLike, format: str = "onnx", what: str = "generator",
                     truncation_psi: float | None = None, truncation_cutoff: int | None = None,
                     opset: int | None = None, dynamic_batch: bool = True, verify: bool = True) -> ExportResult:
    """Write ``G`` (or its mapping/synthesis part) to ``dest`` as ONNX or TorchScript, atomically.

    ``truncation_psi=None`` makes ``psi`` a model input; a number bakes it in. With ``verify`` the
    file is loaded back (onnxruntime / ``torch.jit.load``) and run on a batch of 3 against our network.
    """
    if format not in FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if truncation_cutoff is not None and not 0 < truncation_cutoff <= G.num_ws:
        raise UserInputError(f"truncation cutoff must be in 1..{G.num_ws}, got {truncation_cutoff}")
    dest = Path(dest)
    if any(t.device.type != "cpu" for t in G.state_dict().values()):
        G = copy.deepcopy(G).cpu()
    module = ExportedGenerator(G.eval(), what, truncation_psi, truncation_cutoff).eval()
    module.requires_grad_(False)
    example = module.example_inputs(batch=2)
    with atomic_output(dest) as tmp:
        if format == "onnx":
            _export_onnx(module, example, tmp, opset or DEFAULT_OPSET, dynamic_batch)
        else:
            _export_torchscript(module, example, tmp)
        result = ExportResult(dest, format, what, module.input_names(), module.output_name())
        if verify:
            result.max_abs_diff, scale = _verify(module, tmp, format, dynamic_batch)
            if not result.max_abs_diff <= TOLERANCE * scale:
                raise CheckpointError(f"the exported {format} model disagrees with ours (max |diff| "
                                      f"{result.max_abs_diff:.3g} > {TOLERANCE * scale:.3g}); nothing was written")
    if G.generation == "stylegan3" and bool((G.synthesis.input.transform != torch.eye(3)).any()):
        result.notes.append("the StyleGAN3 input transform set on G is baked into the file")
    return result


@contextlib.contextmanager
def _quiet():
    """The exporters print progress, warnings and log lines; keep the user's terminal clean."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_onnx(module: ExportedGenerator, example: tuple, path: str, opset: int, dynamic_batch: bool) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise CheckpointError(f"ONNX export needs the packages onnx and onnxscript ({exc.name} is missing): "
                              f"pip install 'stylegan[export]'") from None
    names = module.input_names()
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=4096)
        dynamic_shapes = (tuple({0: batch} if n in ("z", "c", "ws") else None for n in names),)  # forward(*inputs)
    size = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    try:
        with _quiet():
            torch.onnx.export(module, example, path, input_names=names, output_names=[module.output_name()],
                              opset_version=opset, dynamo=True, dynamic_shapes=dynamic_shapes,
                              external_data=size > (1800 << 20), optimize=True, verbose=False)
    except Exception as exc:  # the exporter raises many types; all mean "could not export"
        raise CheckpointError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc


def _export_torchscript(module: ExportedGenerator, example: tuple, path: str) -> None:
    try:
        with _quiet():
            traced = torch.jit.trace(module, example, check_trace=False)
            traced.save(path)
    except Exception as exc:
        raise CheckpointError(f"TorchScript export failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:300]}") from exc


def _verify(module: ExportedGenerator, path: str, format: str, dynamic_batch: bool) -> tuple[float, float]:
    """(max |exported - ours|, the output's scale max(1, max |ours|)) on a fresh batch."""
    inputs = module.example_inputs(batch=3 if dynamic_batch else 2, seed=1)
    with torch.no_grad():
        ours = module(*inputs).numpy()
    theirs = run_exported(path, format, dict(zip(module.input_names(), inputs, strict=True)))
    if theirs.shape != ours.shape:
        raise CheckpointError(f"the exported {format} model returned shape {theirs.shape}, expected {ours.shape}")
    return float(np.abs(theirs - ours).max()), max(1.0, float(np.abs(ours).max()))


def run_exported(path: str | os.PathLike, format: str, inputs: dict[str, torch.Tensor | np.ndarray]) -> np.ndarray:
    """Run an exported file on named inputs (onnxruntime for ONNX, ``torch.jit.load`` for TorchScript)."""
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    if format == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise CheckpointError("verifying an ONNX export needs onnxruntime: "
                                  "pip install 'stylegan[export]'") from None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        expected = [i.name for i in session.get_inputs()]
        return session.run(None, {k: arrays[k] for k in expected})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)      # torch >= 2.9 deprecates TorchScript
        model = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return model(*(torch.from_numpy(a) for a in arrays.values())).numpy()
