"""The explorer's drag panel, server side: ``POST /api/drag`` streams the steps of
:func:`stylegan.latent.drag.drag` as NDJSON (one JSON object a line: the step's PNG in base64, the tracked
points and their distances), ``POST /api/drag/stop`` ends a drag after its current step. The last line holds
the result, stored like an uploaded latents file, so the page draws and downloads it through the usual
``/api/render`` and ``/api/ws``. Each step holds the model's lock only for itself: other renders of the
model interleave with a running drag."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections import OrderedDict
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from ..errors import UserInputError
from .explorer import Explorer, UploadedLatents
from .schemas import RenderRequest, Strict, Token

MAX_POINTS = 16
MAX_STEPS = 1000
MAX_SESSIONS = 256
MAX_BRUSH = 2000                                # circles of a painted mask (about 30 KB of JSON)
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6)]
Point = tuple[Coordinate, Coordinate]
Circle = tuple[Coordinate, Coordinate, Annotated[float, Field(gt=0, le=4096)]]


class DragRequest(Strict):
    """Drag the image of ``render`` (the page's current settings): ``handles[i]`` to ``targets[i]``, image pixels."""
    render: RenderRequest
    handles: list[Point] = Field(..., min_length=1, max_length=MAX_POINTS)
    targets: list[Point] = Field(..., min_length=1, max_length=MAX_POINTS)
    steps: int = Field(200, ge=1, le=MAX_STEPS)
    mask: list[Circle] | None = Field(None, max_length=MAX_BRUSH)   # brush dabs (x, y, radius): may change
    session: Token                             # chosen by the page, so that it can stop the drag


class StopRequest(Strict):
    session: Token


def brush_mask(circles: list, shape: tuple[int, int]) -> np.ndarray | None:
    """The painted region (1 = may change) of brush dabs ``(x, y, radius)`` in image pixels, [H, W] = ``shape``."""
    if not circles:
        return None
    height, width = shape
    mask = np.zeros([height, width], np.float32)
    for x, y, r in circles:
        x0, x1 = max(0, int(np.floor(x - r))), min(width - 1, int(np.ceil(x + r)))
        y0, y1 = max(0, int(np.floor(y - r))), min(height - 1, int(np.ceil(y + r)))
        if x0 > x1 or y0 > y1:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        mask[y0:y1 + 1, x0:x1 + 1][(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 1
    if not mask.any():
        raise UserInputError("the painted mask lies outside the image")
    return mask


def start_drag(explorer: Explorer, m, req: DragRequest):
    """``(iterator of DragStep, file stem)``; every argument is checked here (:class:`UserInputError`)."""
    from ..latent.drag import drag
    r = req.render
    if r.noise_mode == "random":
        raise UserInputError("dragging needs noise mode 'const' or 'none' (random noise changes every render)")
    if tuple(r.translate) != (0.0, 0.0) or r.rotate:
        raise UserInputError("reset translate/rotate before dragging")
    if explorer.generation(m.G, r).canvas is not None:
        h, w = m.G.img_shape
        raise UserInputError(f"drag editing works on the model's own {w}x{h} image: set the canvas back to it")
    with m.lock:
        ws, name, _, _, _ = explorer.latents(m, r)
        steps = drag(m.G, ws, req.handles, req.targets, mask=brush_mask(req.mask, m.G.img_shape),
                     steps=req.steps, noise_mode=r.noise_mode)
    return steps, name


def step_line(step) -> bytes:
    from ..render.images import to_pil, to_uint8
    buf = io.BytesIO()
    to_pil(to_uint8(step.image)[0]).save(buf, format="PNG", compress_level=1)
    return (json.dumps({"step": step.step, "points": step.points.tolist(), "distances": step.distances.tolist(),
                        "done": step.done, "png": base64.b64encode(buf.getvalue()).decode("ascii")}) + "\n").encode()


def add_drag_routes(app: FastAPI, explorer: Explorer, *, model, parse, work, locks: dict) -> None:
    """Register the drag endpoints on the explorer's app, using its model loader, body parser, render pool
    (``work``) and per-model locks."""
    sessions: OrderedDict[str, threading.Event] = OrderedDict()

    @app.post("/api/drag")
    async def drag_stream(request: Request):
        req = await parse(request, DragRequest)
        m = await model(req.render.model)
        lock = locks.setdefault(m.name, asyncio.Lock())
        async with lock:
            steps, name = await work(start_drag, explorer, m, req)
        stop = sessions[req.session] = threading.Event()
        while len(sessions) > MAX_SESSIONS:
            sessions.popitem(last=False)[1].set()

        def advance():
            with m.lock:
                return next(steps, None)

        async def lines():
            last = None
            try:
                while not stop.is_set():
                    async with lock:
                        step = await work(advance)
                    if step is None:
                        break
                    last = step
                    yield step_line(step)
            finally:
                if sessions.get(req.session) is stop:
                    del sessions[req.session]
            label = f"{name}-drag"
            key = explorer.store.add(UploadedLatents(ws=last.ws.numpy().astype(np.float32), labels=[label],
                                                     seeds=[None]))
            yield (json.dumps({"result": {"id": key, "count": 1, "labels": [label], "seeds": [None],
                                          "steps": last.step, "done": last.done,
                                          "points": last.points.tolist()}}) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/api/drag/stop")
    async def drag_stop(request: Request):
        req = await parse(request, StopRequest)
        stop = sessions.get(req.session)
        if stop is not None:
            stop.set()
        return {"stopping": stop is not None}
