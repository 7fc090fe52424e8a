/* LensDB web view: play: a moment from its source video (byte ranges, or a clip fetched with the token),
   with the labelled frames' boxes drawn over it; a still with a note when the source is gone. */
"use strict";

async function playMoment(m, tr) {
  document.querySelectorAll("tr.playing").forEach((x) => x.classList.remove("playing"));
  if (tr) tr.classList.add("playing");
  await play(m.video_id, m.video, m.start, m.end);
}

async function play(videoId, name, start, end) {
  const video = $("#player"), note = $("#play-note"), still = $("#still");
  const pv = state.play;
  pv.video = videoId;
  pv.start = start;
  pv.end = end;
  note.textContent = `${name} · ${clock(start)} – ${clock(end)}`;
  if (state.tl.video !== videoId) selectVideo(videoId).catch(() => {});
  const lo = Math.max(0, start - 2), hi = end + 2;
  api(`/videos/${videoId}/boxes?start=${lo}&end=${hi}`).then((b) => {
    pv.boxes = b.frames;
    pv.size = [b.width, b.height];
    const ts = b.frames.map((f) => f.ts);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]).sort((a, c) => a - c);
    pv.spacing = gaps.length ? gaps[gaps.length >> 1] : 0.2;
  }).catch(() => { pv.boxes = []; });
  let s;
  try {
    s = await api(`/videos/${videoId}/still?start=${start}&end=${end}`);
  } catch (e) {
    note.textContent += " · " + e.message;
    return;
  }
  if (!s.source_available) {
    video.hidden = true;
    video.removeAttribute("src");
    video.load();
    showStill(videoId, s, name);
    return;
  }
  still.hidden = true;
  video.hidden = false;
  if (pv.blobUrl) { URL.revokeObjectURL(pv.blobUrl); pv.blobUrl = null; }
  if (state.token) {
    // a <video src> cannot send the token: fetch a clip cut on demand, time 0 = its start
    const cs = start, ce = Math.min(Math.max(end, start) + 1, start + 30);
    const r = await api(`/videos/${videoId}/clip?start=${cs}&end=${ce}`, { raw: true });
    pv.blobUrl = URL.createObjectURL(await r.blob());
    pv.offset = cs;
    video.src = pv.blobUrl;
  } else {
    pv.offset = 0;
    const src = `/videos/${videoId}/file`;
    if (!video.src.endsWith(src)) video.src = src;
  }
  const seek = () => {
    video.currentTime = Math.max(0, start - pv.offset);
    pv.stopAt = Math.max(end, start) + 1;  // pause a second after the moment ends
    video.play().catch(() => {});
  };
  if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, { once: true });
}

async function showStill(videoId, s, name) {
  // the source video is gone: the stored detections of the moment's frame, on a blank still
  const note = $("#play-note"), c = $("#still");
  note.textContent = `${name}: the source video is missing (moved or deleted since ingest); ` +
    `showing the stored labels of frame ${s.frame_id} at ${clock(s.ts)} instead of the picture`;
  const v = state.info.videos.find((x) => x.video_id === videoId) || {};
  const w = v.width || 640, h = v.height || 360;
  c.width = w; c.height = h; c.hidden = false;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#2a3140"; ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#cbd5e1"; ctx.font = `${Math.round(h / 14)}px system-ui, sans-serif`;
  ctx.fillText("source video missing", 16, h - 20);
  try {
    const b = await api(`/videos/${videoId}/boxes?start=${s.ts}&end=${s.ts}`);
    if (b.frames.length) drawBoxes(ctx, b.frames[0].boxes, 1, 1);
  } catch (e) { /* the note says enough */ }
}

function drawBoxes(ctx, boxes, sx, sy) {
  ctx.lineWidth = 2;
  ctx.font = "12px system-ui, sans-serif";
  for (const bx of boxes) {
    const [x1, y1, x2, y2] = bx.box;
    const color = colorOf(bx.class);
    ctx.strokeStyle = color;
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    const label = `${bx.class} ${num(bx.score)}`;
    const tw = ctx.measureText(label).width + 6;
    const ty = Math.max(14, y1 * sy);
    ctx.fillStyle = color;
    ctx.fillRect(x1 * sx, ty - 14, tw, 14);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x1 * sx + 3, ty - 3);
  }
}

function drawOverlay() {
  const video = $("#player"), c = $("#overlay"), pv = state.play;
  const w = video.clientWidth, h = video.clientHeight;
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (!video.hidden && $("#show-boxes").checked && pv.boxes && pv.boxes.length && video.videoWidth) {
    const t = pv.offset + video.currentTime;
    const ts = pv.boxes.map((f) => f.ts);
    const i = nearestIndex(ts, t);
    if (i >= 0 && Math.abs(ts[i] - t) <= Math.max(0.08, pv.spacing * 0.75)) {
      // the picture's box inside the element (object-fit: contain)
      const scale = Math.min(w / video.videoWidth, h / video.videoHeight);
      const ox = (w - video.videoWidth * scale) / 2, oy = (h - video.videoHeight * scale) / 2;
      const src = pv.size && pv.size[0] ? pv.size : [video.videoWidth, video.videoHeight];
      ctx.save();
      ctx.translate(ox, oy);
      drawBoxes(ctx, pv.boxes[i].boxes, video.videoWidth * scale / src[0], video.videoHeight * scale / src[1]);
      ctx.restore();
    }
  }
  if (!video.paused) drawTimeline();
  requestAnimationFrame(drawOverlay);
}

function stopAfterMoment() {
  const video = $("#player"), pv = state.play;
  if (pv.stopAt !== null && pv.stopAt !== undefined && pv.offset + video.currentTime >= pv.stopAt) {
    pv.stopAt = null;  // once: playing on from here is the viewer's choice
    video.pause();
  }
}
