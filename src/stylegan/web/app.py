"""The explorer's HTTP side (FastAPI): a static page plus a small JSON/PNG API.

Renders run in their own thread pool and model loads/uploads in another (two executors: a slow load never
occupies a render thread, and a render of a model already in memory never waits for any load), so the
event loop (and every other request) stays responsive while torch works; renders of one model are
serialised by an ``asyncio.Lock`` (StyleGAN3's transform is state on the model), and a render that a
newer request of the same page has made stale is dropped before it starts. Request bodies are read
through a size cap; every parameter is bounded by :mod:`stylegan.web.schemas`; model files of
``--model-dir`` are first opened in a memory-limited child process (:mod:`stylegan.web.models`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..errors import StyleGANError
from .drag import add_drag_routes
from .explorer import Explorer, NotFound, Rendered
from .models import ModelAccessError, ModelLibrary
from .schemas import MAX_CANVAS_PIXELS, MAX_JSON_BYTES, MAX_UPLOAD_BYTES, RenderRequest, SefaRequest

STATIC = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                                "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_CLIENTS = 4096
#: Model loads (and uploads, SeFa) that may run at once; each untrusted load also runs a child process.
LOAD_THREADS = 2


def create_app(network: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
               device: str = "auto", precision: str = "fp32", *, max_loaded: int = 2, render_threads: int = 2,
               allowed_hosts: list[str] | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               preload: bool = True, max_canvas_pixels: int = MAX_CANVAS_PIXELS,
               encoders: dict[str, str | os.PathLike] | None = None) -> FastAPI:
    """The explorer app for ``network`` (the default model; None: the built-in one, or the first file of
    ``model_dir``) and the models in ``model_dir``.

    ``render_threads``: renders that may run at once (of different models; one model renders one image at
    a time); ``allowed_hosts``: Host
    headers accepted (default: localhost names only, which also stops DNS-rebinding pages from reaching
    a local server); ``preload``: load the default model now, so a bad ``--network`` fails at start-up;
    ``max_canvas_pixels``: the most pixels a canvas other than the model's own may be rendered at.
    ``encoders``: model name (``'default'`` for ``network``) -> encoder file for the photo upload, each loaded and
    checked against its model now, so a mismatch fails at start-up.
    """
    from ..devices import half_dtype, pick_device
    dev = pick_device(device)
    library = ModelLibrary(network, model_dir, device=dev, half=half_dtype(precision, dev), max_loaded=max_loaded)
    explorer = Explorer(library, max_upload_bytes=max_upload_bytes, encoders=encoders)
    if encoders:
        explorer.photo_encoders.check_files(library)
    if preload:
        explorer.model(None)
    render_pool = ThreadPoolExecutor(max(1, render_threads), thread_name_prefix="stylegan-render")
    load_pool = ThreadPoolExecutor(LOAD_THREADS, thread_name_prefix="stylegan-load")
    model_locks: dict[str, asyncio.Lock] = {}
    latest: OrderedDict[str, int] = OrderedDict()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        library.close()
        render_pool.shutdown(wait=False, cancel_futures=True)
        load_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="StyleGAN explorer", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.explorer = explorer
    explorer.max_canvas_pixels = int(max_canvas_pixels)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOCAL_HOSTS)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(StyleGANError)
    async def user_error(request: Request, exc: StyleGANError):
        status = 403 if isinstance(exc, ModelAccessError) else 404 if isinstance(exc, NotFound) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def work(fn, *args):
        """Run a render in the render pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(render_pool, fn, *args)

    async def load(fn, *args):
        """Run model loads, listings and uploads in their own pool: they never wait for renders, nor renders
        for them."""
        return await asyncio.get_running_loop().run_in_executor(load_pool, fn, *args)

    async def model(name: str | None):
        """The model ``name``: at once when it is in memory, else loaded in the load pool."""
        return library.loaded(name) or await load(explorer.model, name)

    async def read_body(request: Request, limit: int, content_type: str) -> bytes:
        """The request body, refused (413) as soon as it passes ``limit`` bytes; the content type must be
        ``content_type`` (a cross-site form cannot send these without the browser asking us first)."""
        got = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if got != content_type:
            raise HTTPException(415, f"send the body as {content_type}")
        too_big = HTTPException(413, f"request larger than {limit / 1024:g} KB" if limit < 2**20
                                else f"file larger than {limit / 2**20:g} MB")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def parse(request: Request, schema: type[BaseModel]):
        body = await read_body(request, MAX_JSON_BYTES, "application/json")
        try:
            return schema.model_validate_json(body or b"{}")
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = list(err.get("loc", ()))
            if loc[:1] == ["latent"] and len(loc) > 2:
                del loc[1]                                    # the union's tag ('seed' / 'upload')
            where = ".".join(str(p) for p in loc)
            raise HTTPException(422, f"{where or 'request'}: {err.get('msg', 'invalid')}") from None

    def note_latest(req: RenderRequest) -> None:
        if req.client is None:
            return
        latest[req.client] = max(req.seq, latest.get(req.client, -1))
        latest.move_to_end(req.client)
        while len(latest) > MAX_CLIENTS:
            latest.popitem(last=False)

    def stale(req: RenderRequest) -> bool:
        return req.client is not None and latest.get(req.client, -1) > req.seq

    async def rendered(req: RenderRequest, fn) -> Rendered | None:
        note_latest(req)
        m = await model(req.model)
        lock = model_locks.setdefault(m.name, asyncio.Lock())
        async with lock:
            if stale(req):
                return None
            return await work(fn, req, m)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/info")
    async def info():
        return {"version": __version__, "models": await asyncio.to_thread(library.models), "default": "default",
                "limits": {"upload_bytes": max_upload_bytes, "json_bytes": MAX_JSON_BYTES,
                           "canvas_pixels": explorer.max_canvas_pixels}}

    @app.get("/api/model")
    async def model_info(name: str | None = None):
        m = await model(name)
        status = explorer.photo_encoders.cached(m) or await load(explorer.photo_encoders.status, m)
        return {**m.info(), "photo_encoder": status}

    @app.post("/api/render")
    async def render(request: Request):
        req = await parse(request, RenderRequest)
        out = await rendered(req, lambda r, m: _with_png(explorer.render(r, m)))
        if out is None:
            return Response(status_code=204, headers={"X-Superseded": "1"})
        result, png = out
        headers = {"X-Image-Name": result.name, "X-Render-Ms": f"{result.seconds * 1000:.1f}", "X-Seq": str(req.seq)}
        if result.canvas_note:
            headers["X-Canvas-Note"] = result.canvas_note
        return Response(png, media_type="image/png", headers=headers)

    @app.post("/api/ws")
    async def ws_file(request: Request):
        req = await parse(request, RenderRequest)
        req.client = None
        name, data = await rendered(req, lambda r, m: _ws_npz(explorer, r, m))
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}.npz"', "X-Image-Name": name})

    @app.post("/api/upload/latents")
    async def upload_latents(request: Request, model: str | None = None, filename: str | None = None):
        data = await read_body(request, max_upload_bytes, "application/octet-stream")
        return await load(explorer.upload_latents, model, data, filename)

    @app.post("/api/upload/directions")
    async def upload_directions(request: Request, model: str | None = None, filename: str | None = None):
        data = await read_body(request, max_upload_bytes, "application/octet-stream")
        return await load(explorer.upload_directions, model, data, filename)

    @app.post("/api/upload/photo")
    async def upload_photo(request: Request, model_name: str | None = Query(None, alias="model"),
                           filename: str | None = None, steps: str | None = None, face: str | None = None):
        """A photo -> encoder inversion; holds the model's render lock (refinement steps draw with G)."""
        data = await read_body(request, max_upload_bytes, "application/octet-stream")
        m = await model(model_name)
        async with model_locks.setdefault(m.name, asyncio.Lock()):
            return await load(explorer.upload_photo, m.name, data, filename, steps, face)

    @app.post("/api/directions/sefa")
    async def sefa(request: Request):
        req = await parse(request, SefaRequest)
        return await load(explorer.sefa, req)

    add_drag_routes(app, explorer, model=model, parse=parse, work=work, locks=model_locks)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _with_png(result: Rendered) -> tuple[Rendered, bytes]:
    from ..render.images import to_pil
    buf = io.BytesIO()
    to_pil(result.image).save(buf, format="PNG", compress_level=1)
    return result, buf.getvalue()


def _ws_npz(explorer: Explorer, req: RenderRequest, m) -> tuple[str, bytes]:
    """The request's latent as an ``.npz`` in our layout (``save_ws``: ws, w, seeds, z, psi, c, labels)."""
    from ..latent.io import save_ws
    with m.lock:
        ws, name, extra, _, _ = explorer.latents(m, req)
    with tempfile.TemporaryDirectory(prefix="stylegan-web-") as tmp:
        path = save_ws(Path(tmp) / f"{name}.npz", np.asarray(ws), **extra)
        return name, path.read_bytes()
