// The drag panel: with "place points" on, clicks on the image set handle (red) / target (blue) pairs;
// with "paint mask" on, dragging over the image paints the region that may change (brush dabs sent as
// circles; no paint = everything may change). Start streams the drag's steps from POST /api/drag (one fetch, NDJSON lines read as they arrive) and
// shows each step's image; the result becomes the page's latent (an uploaded w), so the usual render and
// downloads apply to it. Undo returns to the latent (and mix / direction settings) before the last drag.
// Points and the mask are in the model's own image pixels (info.img_shape = [H, W]); with another canvas
// chosen, or on a non-square model, the panel is disabled with a note (app.js syncCanvas, dragBlocked), as
// latent/drag.py drags the own image of square models only.
// Uses app.js's globals: state, $, requestRender, showError, hideError, errorText, postJSON, buildRequest,
// dragBlocked.
"use strict";

const dragState = { pairs: [], running: null, undo: [], brush: [], painting: false };

function imageShape() { return state.info ? state.info.img_shape : [1, 1]; }    // [H, W]

function dragPixel(e) {
  const img = $("image"), rect = img.getBoundingClientRect(), [h, w] = imageShape();
  const px = (v, lo, size, n) => Math.min(n - 1, Math.max(0, Math.round(((v - lo) / size) * n - 0.5)));
  return [px(e.clientX, rect.left, rect.width, w), px(e.clientY, rect.top, rect.height, h)];
}

function drawDragPoints() {
  const overlay = $("drag-overlay"), [h, w] = imageShape();
  overlay.replaceChildren();
  const mark = (p, kind, i) => {
    const m = document.createElement("div");
    m.className = `drag-mark ${kind}`;
    m.dataset.index = String(i);
    m.style.left = `${((p[0] + 0.5) / w) * 100}%`;
    m.style.top = `${((p[1] + 0.5) / h) * 100}%`;
    overlay.append(m);
  };
  dragState.pairs.forEach((pair, i) => { mark(pair.h, "handle", i); if (pair.t) mark(pair.t, "target", i); });
  const complete = dragState.pairs.filter((p) => p.t).length;
  $("drag-count").textContent = `${complete} pair(s)`;
  $("drag-start").disabled = !complete || !!dragState.running || !!dragBlocked();
}

function drawBrush() {
  const canvas = $("drag-mask"), [h, w] = imageShape();
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "rgba(90, 169, 255, 0.35)";
  for (const [x, y, r] of dragState.brush) { ctx.beginPath(); ctx.arc(x + 0.5, y + 0.5, r, 0, 2 * Math.PI); ctx.fill(); }
  canvas.dataset.brush = JSON.stringify(dragState.brush);       // what Start will send (read by the tests)
  $("drag-mask-clear").disabled = !dragState.brush.length;
}

function onBrush(e) {
  if (e.type === "pointerup" || e.type === "pointercancel") { dragState.painting = false; return; }
  if (e.type === "pointerdown") dragState.painting = true;
  if (!dragState.painting || dragState.brush.length >= 2000) return;
  const [x, y] = dragPixel(e), r = Math.max(0.5, Number($("drag-brush-size").value) || 1);
  const last = dragState.brush[dragState.brush.length - 1];
  if (last && last[0] === x && last[1] === y && last[2] === r) return;
  dragState.brush.push([x, y, r]);
  drawBrush();
}

function onDragClick(e) {
  const brush = $("drag-brush").checked;
  if ((!$("drag-mode").checked && !brush) || !state.info || dragState.running || dragBlocked()) return;
  e.stopPropagation();                       // not a move through the seed plane
  e.preventDefault();
  if (brush) { onBrush(e); return; }
  if (e.type !== "pointerdown") return;
  const p = dragPixel(e), last = dragState.pairs[dragState.pairs.length - 1];
  if (last && !last.t) last.t = p; else dragState.pairs.push({ h: p, t: null });
  drawDragPoints();
}

function snapshot() {
  return { source: state.source, upload: state.upload, uploadIndex: state.uploadIndex, x: state.x, y: state.y,
           mixOn: state.mixOn, strengths: state.strengths.slice(), pairs: JSON.parse(JSON.stringify(dragState.pairs)) };
}

function restore(s) {
  Object.assign(state, { source: s.source, upload: s.upload, uploadIndex: s.uploadIndex, x: s.x, y: s.y, mixOn: s.mixOn });
  state.strengths = s.strengths;
  $("mix-on").checked = s.mixOn;
  document.querySelectorAll("#directions .direction").forEach((row) => {
    const slider = row.querySelector("input"), v = state.strengths[Number(slider.dataset.index)] || 0;
    slider.value = v; row.querySelector("output").textContent = v.toFixed(1);
  });
  $(s.source === "upload" ? "source-upload" : "source-seed").checked = true;
  $("source-upload").disabled = !s.upload;
  dragState.pairs = s.pairs;
  syncLatent();
  drawDragPoints();
}

function adoptResult(result, before) {
  dragState.undo.push(before);
  $("drag-undo").disabled = false;
  state.upload = Object.assign(result, { num_ws: state.info.num_ws, w_dim: state.info.w_dim });
  state.uploadIndex = 0;
  state.source = "upload";
  $("source-upload").disabled = false;
  $("source-upload").checked = true;
  $("upload-row").hidden = true;
  state.mixOn = false; $("mix-on").checked = false;           // both are in the dragged w now
  state.strengths = state.strengths.map(() => 0);
  restore(Object.assign(snapshot(), { pairs: dragState.pairs }));
  dragState.pairs = dragState.pairs.filter((p) => p.t).map((p, i) => ({ h: result.points[i], t: p.t }));
  drawDragPoints();
  requestRender(true);
}

async function startDrag() {
  const pairs = dragState.pairs.filter((p) => p.t);
  if (!pairs.length || dragState.running) return;
  const session = Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("");
  const body = { render: buildRequest(), handles: pairs.map((p) => p.h), targets: pairs.map((p) => p.t),
                 steps: Number($("drag-steps").value) || 200, session,
                 mask: dragState.brush.length ? dragState.brush : null };
  const before = snapshot(), status = $("drag-status");
  dragState.running = session;
  $("drag-stop").disabled = false; $("drag-start").disabled = true;
  status.dataset.state = "running";
  try {
    const res = await fetch("/api/drag", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (msg.result) {
          status.textContent = `${msg.result.done ? "arrived" : "stopped"} after ${msg.result.steps} step(s)`;
          status.dataset.points = JSON.stringify(msg.result.points);
          adoptResult(msg.result, before);
        } else {
          $("image").src = `data:image/png;base64,${msg.png}`;
          pairs.forEach((p, i) => { p.h = msg.points[i]; });
          drawDragPoints();
          status.textContent = `step ${msg.step} · ${Math.max(...msg.distances).toFixed(1)} px to go`;
        }
      }
    }
    hideError();
    status.dataset.state = "done";
  } catch (err) {
    showError(err.message);
    status.dataset.state = "error";
  } finally {
    dragState.running = null;
    $("drag-stop").disabled = true;
    drawDragPoints();
  }
}

function setupDragPanel() {
  const frame = $("frame");
  ["pointerdown", "pointermove", "pointerup", "pointercancel"].forEach((t) => frame.addEventListener(t, onDragClick, true));
  const modes = () => frame.classList.toggle("placing", $("drag-mode").checked || $("drag-brush").checked);
  $("drag-mode").addEventListener("change", () => { if ($("drag-mode").checked) $("drag-brush").checked = false; modes(); });
  $("drag-brush").addEventListener("change", () => { if ($("drag-brush").checked) $("drag-mode").checked = false; modes(); });
  $("drag-mask-clear").addEventListener("click", () => { dragState.brush = []; drawBrush(); });
  $("drag-start").addEventListener("click", startDrag);
  $("drag-stop").addEventListener("click", () => {
    if (dragState.running) postJSON("/api/drag/stop", { session: dragState.running }).catch((err) => showError(err.message));
  });
  $("drag-clear").addEventListener("click", () => { dragState.pairs = []; drawDragPoints(); });
  $("drag-undo").addEventListener("click", () => {
    const s = dragState.undo.pop();
    if (!s || dragState.running) return;
    restore(s);
    $("drag-undo").disabled = !dragState.undo.length;
    requestRender(true);
  });
  drawDragPoints();
  drawBrush();
}

document.addEventListener("DOMContentLoaded", setupDragPanel);
