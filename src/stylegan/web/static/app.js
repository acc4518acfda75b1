// StyleGAN explorer: the page keeps the full state and asks the server for one image at a time.
// At most one render is in flight; changes made meanwhile are coalesced into the next request, and a
// discrete change (new seed typed, model switched) aborts the request in flight. The server drops any
// queued render of this page that a newer one has made stale, so dragging never builds a backlog.
"use strict";

const SEED_SPACE = 2 ** 32;   // seeds are 0 .. 2^32 - 1
const SEED_ROW = 100;         // one step down in the seed plane adds 100 (as NVIDIA's visualizer)
const DRAG_SPEED = 0.01;      // latent units per screen pixel: 100 px of drag = the next seed

const $ = (id) => document.getElementById(id);
const clientId = Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("");

const state = {
  model: "default", info: null,
  x: 0, y: 0,                      // position in the seed plane
  source: "seed", upload: null, uploadIndex: 0,
  psi: 1, cutoff: null, classIdx: null, noise: "const",
  mixOn: false, mixSeed: 1, mixLayers: new Set(),
  directions: null, strengths: [],
  translate: [0, 0], rotate: 0,
  canvasKey: "model", canvasCustom: null, extension: "tile", limits: {},
};

let seq = 0, inFlight = null, dirty = false, shown = null;

function mod(n, m) { return ((n % m) + m) % m; }

function seedPosition() {
  const ix = Math.floor(state.x), iy = Math.floor(state.y);
  return { seed: mod(ix + SEED_ROW * iy, SEED_SPACE), dx: round4(state.x - ix), dy: round4(state.y - iy) };
}
function round4(v) { return Math.min(0.9999, Math.round(v * 10000) / 10000); }

function buildRequest() {
  const req = {
    model: state.model, psi: state.psi, cutoff: state.cutoff, class_idx: state.classIdx,
    noise_mode: state.noise, translate: state.translate, rotate: state.rotate, edits: [], mix: null,
  };
  if (state.source === "upload" && state.upload) {
    req.latent = { kind: "upload", id: state.upload.id, index: state.uploadIndex };
  } else {
    req.latent = Object.assign({ kind: "seed" }, seedPosition());
  }
  if (state.mixOn && state.mixLayers.size) {
    req.mix = { seed: state.mixSeed, layers: Array.from(state.mixLayers).sort((a, b) => a - b) };
  }
  if (state.directions) {
    state.strengths.forEach((s, i) => { if (s !== 0) req.edits.push({ directions: state.directions.id, index: i, strength: s }); });
  }
  const size = canvasSize();
  if (size) {
    req.canvas = `${size[0]}x${size[1]}`;                      // as `--size WxH`
    if (state.info.canvas.extensions.length) req.extension = state.extension;
  }
  return req;
}

// ---- rendering -------------------------------------------------------------------------------------------

function requestRender(abort = false) {
  dirty = true;
  if (inFlight && abort) inFlight.abort();
  if (!inFlight) pump();
  setBusy(true);
}

async function pump() {
  if (!dirty) return;
  dirty = false;
  const req = buildRequest();
  const body = Object.assign({}, req, { client: clientId, seq: ++seq });
  const ctrl = new AbortController();
  inFlight = ctrl;
  try {
    const res = await fetch("/api/render", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: ctrl.signal,
    });
    if (res.status === 204) {
      // superseded on the server by a newer request of this page
    } else if (!res.ok) {
      showError(await errorText(res));
    } else {
      show(await res.blob(), res, req, body.seq);
    }
  } catch (err) {
    if (err.name !== "AbortError") showError(`cannot reach the server: ${err.message}`);
  } finally {
    inFlight = null;
    if (dirty) pump(); else setBusy(false);
  }
}

function show(blob, res, req, n) {
  const img = $("image");
  const url = URL.createObjectURL(blob);
  const old = shown && shown.url;
  img.onload = () => { if (old) URL.revokeObjectURL(old); fitFrame(); };
  img.src = url;
  $("canvas-note").textContent = res.headers.get("X-Canvas-Note") || "";
  shown = { url, blob, seq: n, name: res.headers.get("X-Image-Name") || "image", req };
  img.dataset.request = JSON.stringify(req);
  img.dataset.name = shown.name;
  hideError();
  $("status").textContent = `${shown.name} · ${res.headers.get("X-Render-Ms")} ms`;
  $("download-png").disabled = false;
  $("download-ws").disabled = false;
}

function setBusy(busy) {
  const img = $("image");
  img.dataset.state = busy ? "busy" : (shown ? "ready" : "empty");
  document.body.classList.toggle("busy", busy);
}

async function errorText(res) {
  try { const j = await res.json(); return j.detail || res.statusText; } catch (e) { return `${res.status} ${res.statusText}`; }
}
function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = false; $("image").dataset.error = msg; }
function hideError() { $("error").hidden = true; delete $("image").dataset.error; }

// ---- server calls ----------------------------------------------------------------------------------------

async function api(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}
function postJSON(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}
function upload(kind, file) {
  const q = new URLSearchParams({ model: state.model, filename: file.name });
  return api(`/api/upload/${kind}?${q}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file });
}

// ---- model -----------------------------------------------------------------------------------------------

async function loadModel(name) {
  if (inFlight) inFlight.abort();
  $("status").textContent = `loading ${name}…`;
  const info = await api(`/api/model?${new URLSearchParams({ name })}`);
  state.model = name;
  state.info = info;
  const [height, width] = info.img_shape;
  $("model-facts").textContent = `${info.generation} · ${width}×${height} · ${info.num_ws} ws × ${info.w_dim}` +
    (info.c_dim ? ` · ${info.c_dim} classes` : "");
  const frame = $("frame");
  frame.dataset.resolution = info.img_resolution;
  frame.classList.toggle("pixelated", Math.max(height, width) < 256);
  buildCanvas(info);
  // class
  $("class-label").hidden = !info.c_dim;
  $("class").max = Math.max(0, info.c_dim - 1);
  state.classIdx = info.c_dim ? Math.min(Number($("class").value) || 0, info.c_dim - 1) : null;
  // truncation cutoff: 0 = all layers
  $("cutoff").max = info.num_ws;
  if (state.cutoff && state.cutoff > info.num_ws) state.cutoff = null;
  syncCutoff();
  // style mixing layers
  buildLayers(info);
  // StyleGAN3 transform
  $("transform-panel").hidden = !info.has_transform;
  if (!info.has_transform) { state.translate = [0, 0]; state.rotate = 0; syncTransform(); }
  // latents and directions belong to a model size: drop them when the size changes
  if (state.upload && (state.upload.num_ws !== info.num_ws || state.upload.w_dim !== info.w_dim)) clearUpload();
  if (state.directions) setDirections(null);     // directions are found for one model
  syncPhotoPanel(info);
  requestRender(true);
}

function buildLayers(info) {
  document.querySelectorAll("#mix-presets [data-preset]").forEach((b) => {
    const group = info.layer_groups[b.dataset.preset];
    b.disabled = Array.isArray(group) && group.length === 0;
    if (group) b.title = group.length ? `ws ${compactRanges(group)}` : `this ${info.img_resolution}² model has no ${b.dataset.preset} layers`;
  });
  const box = $("mix-layers");
  box.replaceChildren();
  state.mixLayers = new Set(Array.from(state.mixLayers).filter((i) => i < info.num_ws));
  if (!state.mixLayers.size) (info.layer_groups.coarse || []).forEach((i) => state.mixLayers.add(i));
  for (let i = 0; i < info.num_ws; i++) {
    const label = document.createElement("label");
    label.title = `w ${i} · ${info.layer_resolutions[i]}²`;
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.value = String(i); cb.id = `mix-layer-${i}`;
    cb.checked = state.mixLayers.has(i);
    cb.addEventListener("change", () => {
      if (cb.checked) state.mixLayers.add(i); else state.mixLayers.delete(i);
      if (state.mixOn) requestRender(true);
    });
    label.append(cb, document.createTextNode(String(i)));
    box.append(label);
  }
}

// ---- canvas ----------------------------------------------------------------------------------------------
// The image size: the model's own (no canvas sent: the ordinary path, byte for byte), a preset or a custom
// W x H, sent as `canvas: "WxH"` (what `--size` takes); the server checks it and says how it was rounded.

function canvasSize() {
  if (!state.info || state.canvasKey === "model") return null;
  if (state.canvasKey === "custom") return state.canvasCustom;
  const preset = state.info.canvas.presets.find((p) => p.key === state.canvasKey);
  return preset ? preset.size : null;
}

function buildCanvas(info) {
  const sel = $("canvas-preset"), budget = state.limits.canvas_pixels || Infinity;
  sel.replaceChildren(...info.canvas.presets.map((p) => {
    const opt = new Option(p.label, p.key);
    opt.disabled = p.key !== "model" && p.rendered[0] * p.rendered[1] > budget;
    if (opt.disabled) opt.title = `over this server's ${budget / 1e6} megapixels (stylegan serve --max-canvas-mp)`;
    return opt;
  }), new Option("custom W×H", "custom"));
  if (!Array.from(sel.options).some((o) => o.value === state.canvasKey && !o.disabled)) state.canvasKey = "model";
  sel.value = state.canvasKey;
  $("canvas-extension-label").hidden = !info.canvas.extensions.length;
  if (!state.canvasCustom) state.canvasCustom = [info.img_shape[1], info.img_shape[0]];
  syncCanvas();
}

function syncCanvas() {
  $("canvas-custom").hidden = state.canvasKey !== "custom";
  [$("canvas-w").value, $("canvas-h").value] = state.canvasCustom || ["", ""];
  const size = canvasSize(), info = state.info;
  $("frame").classList.toggle("canvas", !!size);
  if (!size) $("canvas-note").textContent = "";
  const blocked = dragBlocked(), note = $("drag-canvas-note");
  note.hidden = !blocked;
  note.textContent = blocked || "";
  $("drag-mode").disabled = $("drag-brush").disabled = !!blocked;
  if (blocked) { $("drag-mode").checked = $("drag-brush").checked = false; $("frame").classList.remove("placing"); }
  if (typeof drawDragPoints === "function") drawDragPoints();
}

function dragBlocked() {
  // why the drag panel is off, or null: drag editing (latent/drag.py) works on the model's own image
  const info = state.info;
  if (!info) return null;
  const [h, w] = info.img_shape;
  return canvasSize() ? `drag editing works on the model's own ${w}×${h} image: choose it under Canvas to drag points`
    : null;
}

function fitFrame() {
  // the frame takes the real aspect of the image shown (canvases, non-square models), never a square
  const img = $("image"), w = img.naturalWidth, h = img.naturalHeight;
  if (!w || !h) return;
  $("frame").style.setProperty("--aspect", String(w / h));
  img.dataset.natural = `${w}x${h}`;
}

function setupCanvas() {
  $("canvas-preset").addEventListener("change", (e) => { state.canvasKey = e.target.value; syncCanvas(); requestRender(true); });
  $("canvas-extension").addEventListener("change", (e) => { state.extension = e.target.value; if (canvasSize()) requestRender(true); });
  for (const [id, i] of [["canvas-w", 0], ["canvas-h", 1]]) {
    $(id).addEventListener("change", (e) => {
      const size = (state.canvasCustom || [0, 0]).slice();
      size[i] = e.target.value.trim() === "" ? e.target.value : Math.floor(Number(e.target.value));
      state.canvasCustom = size;
      requestRender(true);
    });
  }
}

// ---- latent ----------------------------------------------------------------------------------------------

function syncLatent() {
  const p = seedPosition();
  $("seed").value = p.seed;
  $("offset-x").value = p.dx.toFixed(2);
  $("offset-y").value = p.dy.toFixed(2);
}

function setSeed(seed) {
  state.x = mod(Math.floor(Number(seed) || 0), SEED_SPACE);
  state.y = 0;
  state.source = "seed";
  $("source-seed").checked = true;
  syncLatent();
  requestRender(true);
}

function clearUpload() {
  state.upload = null; state.source = "seed";
  $("source-seed").checked = true;
  $("source-upload").disabled = true;
  $("upload-row").hidden = true;
}

function setupDrag() {
  const img = $("image");
  let last = null;
  img.addEventListener("pointerdown", (e) => {
    if (state.source !== "seed") return;
    last = [e.clientX, e.clientY];
    img.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  img.addEventListener("pointermove", (e) => {
    if (!last) return;
    state.x -= (e.clientX - last[0]) * DRAG_SPEED;
    state.y -= (e.clientY - last[1]) * DRAG_SPEED;
    last = [e.clientX, e.clientY];
    syncLatent();
    requestRender();
  });
  const end = () => { last = null; };
  img.addEventListener("pointerup", end);
  img.addEventListener("pointercancel", end);
}

// Photo upload -> encoder inversion.
// The server runs the model's encoder (plus optional refinement steps) on the photo and keeps the result as an
// uploaded latent; the page then shows and edits it exactly like an uploaded projected_w.npz.

function syncPhotoPanel(info) {
  const enc = info.photo_encoder || { available: false, reason: "this server has no photo encoder" };
  $("upload-photo").disabled = !enc.available;
  $("photo-steps").disabled = !enc.available;
  $("photo-steps").max = enc.max_steps || 0;
  $("photo-align").disabled = !enc.available || !enc.align_faces;
  $("photo-status").textContent = enc.available ? `encoder: ${enc.encoder} (0 steps = encoder only)` : enc.reason;
  $("photo-panel").dataset.available = enc.available ? "yes" : "no";
  $("photo-result").hidden = true;
}

function setupPhotoUpload() {
  $("upload-photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const steps = Math.max(0, Math.floor(Number($("photo-steps").value) || 0));
    $("photo-status").textContent = `inverting ${file.name}…`;
    try {
      const q = new URLSearchParams({ model: state.model, filename: file.name, steps: String(steps) });
      if ($("photo-align").checked) q.set("face", "0");
      const up = await api(`/api/upload/photo?${q}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file });
      state.upload = Object.assign(up, { num_ws: state.info.num_ws, w_dim: state.info.w_dim });
      state.uploadIndex = 0;
      $("upload-index").replaceChildren(new Option(up.labels[0], "0"));
      $("upload-row").hidden = true;
      $("source-upload").disabled = false;
      $("source-upload").checked = true;
      state.source = "upload";
      $("photo-target").src = up.target;
      $("photo-result").hidden = false;
      $("photo-status").textContent = `${up.labels[0]}: ${up.psnr.toFixed(2)} dB` +
        (up.steps ? ` after ${up.steps} steps (encoder ${up.encoder_psnr.toFixed(2)} dB)` : " (encoder only)");
      $("photo-status").dataset.psnr = String(up.psnr);
      requestRender(true);
    } catch (err) {
      $("photo-status").textContent = "upload failed";
      showError(err.message);
    }
    e.target.value = "";
  });
}

// ---- truncation, class, noise ----------------------------------------------------------------------------

function syncCutoff() {
  $("cutoff").value = state.cutoff || 0;
  $("cutoff-value").textContent = state.cutoff ? `first ${state.cutoff} ws` : "all layers";
}

// ---- directions ------------------------------------------------------------------------------------------

function setDirections(set) {
  state.directions = set;
  state.strengths = set ? new Array(set.count).fill(0) : [];
  const box = $("directions");
  box.replaceChildren();
  $("directions-source").textContent = set ? `${set.source}: ${set.count} direction(s)` +
    (set.layers ? ` on ws ${compactRanges(set.layers)}` : " on all ws") : "";
  if (!set) return;
  const range = Number($("strength-range").value) || 3;
  set.names.slice(0, 64).forEach((name, i) => {
    const row = document.createElement("div");
    row.className = "row direction";
    const label = document.createElement("label");
    label.textContent = name;
    label.htmlFor = `direction-${i}`;
    if (set.values) label.title = `value ${set.values[i].toPrecision(4)}`;
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", id: `direction-${i}`, min: -range, max: range, step: 0.1, value: 0 });
    slider.dataset.index = String(i);
    const out = document.createElement("output");
    out.textContent = "0.0";
    slider.addEventListener("input", () => {
      state.strengths[i] = Number(slider.value);
      out.textContent = Number(slider.value).toFixed(1);
      requestRender();
    });
    row.append(label, slider, out);
    box.append(row);
  });
}

function compactRanges(idx) {
  const out = [];
  for (let i = 0; i < idx.length; i++) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j] + 1) j++;
    out.push(i === j ? `${idx[i]}` : `${idx[i]}-${idx[j]}`);
    i = j;
  }
  return out.join(",");
}

// ---- StyleGAN3 transform ---------------------------------------------------------------------------------

function syncTransform() {
  $("translate-x").value = $("translate-x-range").value = state.translate[0];
  $("translate-y").value = $("translate-y-range").value = state.translate[1];
  $("rotate").value = $("rotate-range").value = state.rotate;
}

// ---- downloads -------------------------------------------------------------------------------------------

function saveBlob(blob, name) {
  const a = document.createElement("a");
  const url = URL.createObjectURL(blob);
  a.href = url; a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function downloadPNG() {
  if (shown) saveBlob(shown.blob, `${shown.name}.png`);   // the very bytes on screen
}

async function downloadWs() {
  if (!shown) return;
  try {
    const res = await fetch("/api/ws", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(shown.req) });
    if (!res.ok) throw new Error(await errorText(res));
    saveBlob(await res.blob(), `${res.headers.get("X-Image-Name") || shown.name}.npz`);
  } catch (err) { showError(err.message); }
}

// ---- wiring ----------------------------------------------------------------------------------------------

function pairNumber(rangeId, numberId, apply, continuous = true) {
  const r = $(rangeId), n = $(numberId);
  r.addEventListener("input", () => { n.value = r.value; apply(Number(r.value)); requestRender(!continuous); });
  n.addEventListener("change", () => {
    const v = Number(n.value);
    if (!Number.isFinite(v)) return;
    r.value = v; apply(v); requestRender(true);
  });
}

function wire() {
  $("model").addEventListener("change", (e) => loadModel(e.target.value).catch((err) => showError(err.message)));
  $("seed").addEventListener("change", (e) => setSeed(e.target.value));
  $("seed-prev").addEventListener("click", () => setSeed(mod(seedPosition().seed - 1, SEED_SPACE)));
  $("seed-next").addEventListener("click", () => setSeed(mod(seedPosition().seed + 1, SEED_SPACE)));
  $("seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
  for (const [id, axis] of [["offset-x", "x"], ["offset-y", "y"]]) {
    $(id).addEventListener("change", (e) => {
      const v = Math.min(0.99, Math.max(0, Number(e.target.value) || 0));
      state[axis] = Math.floor(state[axis]) + v;
      syncLatent(); requestRender(true);
    });
  }
  $("offset-reset").addEventListener("click", () => { state.x = Math.round(state.x); state.y = Math.round(state.y); syncLatent(); requestRender(true); });
  document.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", () => {
    state.source = r.value; requestRender(true);
  }));
  $("upload-ws").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const up = await upload("latents", file);
      state.upload = Object.assign(up, { num_ws: state.info.num_ws, w_dim: state.info.w_dim });
      state.uploadIndex = 0;
      const sel = $("upload-index");
      sel.replaceChildren(...up.labels.map((label, i) => new Option(label, String(i))));
      $("upload-row").hidden = up.count < 2;
      $("source-upload").disabled = false;
      $("source-upload").checked = true;
      state.source = "upload";
      requestRender(true);
    } catch (err) { showError(err.message); }
    e.target.value = "";
  });
  $("upload-index").addEventListener("change", (e) => { state.uploadIndex = Number(e.target.value); requestRender(true); });

  pairNumber("psi-range", "psi", (v) => { state.psi = v; });
  $("cutoff").addEventListener("input", (e) => { state.cutoff = Number(e.target.value) || null; syncCutoff(); requestRender(); });
  $("noise").addEventListener("change", (e) => { state.noise = e.target.value; requestRender(true); });
  $("class").addEventListener("change", (e) => {
    const max = state.info ? state.info.c_dim - 1 : 0;
    state.classIdx = Math.min(max, Math.max(0, Math.floor(Number(e.target.value) || 0)));
    e.target.value = state.classIdx;
    requestRender(true);
  });

  $("mix-on").addEventListener("change", (e) => { state.mixOn = e.target.checked; requestRender(true); });
  $("mix-seed").addEventListener("change", (e) => { state.mixSeed = mod(Math.floor(Number(e.target.value) || 0), SEED_SPACE); if (state.mixOn) requestRender(true); });
  $("mix-presets").addEventListener("click", (e) => {
    const preset = e.target.dataset && e.target.dataset.preset;
    if (!preset || !state.info) return;
    const n = state.info.num_ws;
    const layers = preset === "all" ? [...Array(n).keys()] : preset === "none" ? [] : state.info.layer_groups[preset] || [];
    state.mixLayers = new Set(layers);
    for (let i = 0; i < n; i++) $(`mix-layer-${i}`).checked = state.mixLayers.has(i);
    if (!state.mixOn && layers.length) { state.mixOn = true; $("mix-on").checked = true; }
    requestRender(true);
  });

  $("sefa").addEventListener("click", async () => {
    try {
      const set = await postJSON("/api/directions/sefa", { model: state.model, layers: $("sefa-layers").value, num: Number($("sefa-num").value) || 8 });
      setDirections(set);
      requestRender(true);
    } catch (err) { showError(err.message); }
  });
  $("upload-directions").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const set = await upload("directions", file);
      setDirections(set);
      requestRender(true);
    } catch (err) { showError(err.message); }
    e.target.value = "";
  });
  $("strength-range").addEventListener("change", () => {
    const range = Math.min(100, Math.max(0.5, Number($("strength-range").value) || 3));
    $("strength-range").value = range;
    let changed = false;
    document.querySelectorAll("#directions .direction").forEach((row) => {
      const slider = row.querySelector("input"), i = Number(slider.dataset.index);
      slider.min = -range; slider.max = range;
      const clamped = Math.min(range, Math.max(-range, state.strengths[i]));
      if (clamped !== state.strengths[i]) { state.strengths[i] = clamped; changed = true; }
      slider.value = clamped; row.querySelector("output").textContent = clamped.toFixed(1);
    });
    if (changed) requestRender(true);
  });
  $("directions-reset").addEventListener("click", () => {
    state.strengths.fill(0);
    document.querySelectorAll("#directions .direction").forEach((row) => {
      row.querySelector("input").value = 0; row.querySelector("output").textContent = "0.0";
    });
    requestRender(true);
  });

  pairNumber("translate-x-range", "translate-x", (v) => { state.translate = [v, state.translate[1]]; });
  pairNumber("translate-y-range", "translate-y", (v) => { state.translate = [state.translate[0], v]; });
  pairNumber("rotate-range", "rotate", (v) => { state.rotate = v; });
  $("transform-reset").addEventListener("click", () => { state.translate = [0, 0]; state.rotate = 0; syncTransform(); requestRender(true); });

  $("download-png").addEventListener("click", downloadPNG);
  $("download-ws").addEventListener("click", downloadWs);
  setupDrag();
  setupPhotoUpload();
  setupCanvas();
}

async function start() {
  wire();
  try {
    const info = await api("/api/info");
    state.limits = info.limits || {};
    const sel = $("model");
    sel.replaceChildren(...info.models.map((m) => new Option(m.label, m.name)));
    sel.disabled = info.models.length < 2;
    syncLatent();
    await loadModel(info.default);
  } catch (err) { showError(err.message); }
}

document.addEventListener("DOMContentLoaded", start);
