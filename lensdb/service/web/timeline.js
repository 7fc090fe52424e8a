/* LensDB web view: the timeline: decimated series per video drawn on a canvas; hover, zoom, pan, click. */
"use strict";

let tlTimer = null;

async function selectVideo(id, keepView) {
  $("#tl-video").value = String(id);
  const v = state.info.videos.find((x) => x.video_id === Number(id));
  if (!v) return;
  const tl = state.tl;
  if (tl.video !== v.video_id || !keepView) {
    tl.video = v.video_id;
    tl.full = [0, v.duration || 0];
    tl.start = tl.full[0];
    tl.end = tl.full[1];
    tl.on = new Set();
  }
  await loadTimeline(!tl.full[1]);
}

async function loadTimeline(whole) {
  const tl = state.tl;
  if (tl.video === null) return;
  const canvas = $("#timeline");
  const points = Math.max(50, Math.min(2000, Math.floor(canvas.clientWidth / 2)));
  const p = new URLSearchParams(whole ? { points } : { start: tl.start, end: tl.end, points });
  if (tl.on.size) p.set("classes", [...tl.on].join(","));
  const data = await api(`/videos/${tl.video}/timeline?${p}`);
  if (data.video_id !== tl.video) return;
  if (!tl.on.size) {
    const withPred = Object.keys(data.series).filter((c) => data.series[c].predicted.t.length);
    const fallback = Object.keys(state.info.classes || {}).filter((c) => data.classes.includes(c)).slice(0, 3);
    tl.on = new Set(withPred.length ? withPred : fallback);
  }
  tl.data = data;
  if (data.last !== null && data.last > tl.full[1]) tl.full[1] = data.last;  // no duration known
  if (whole) {
    tl.full[1] = Math.max(tl.full[1], data.end);
    tl.start = tl.full[0];
    tl.end = tl.full[1];
  }
  renderClassToggles();
  $("#tl-info").textContent = `${clock(data.start)} – ${clock(data.end)} · ${data.frames} frames, ` +
    `${data.labelled_frames} labelled · bucket ${num(data.bucket_seconds, 3)} s`;
  drawTimeline();
}

function renderClassToggles() {
  const box = $("#tl-classes");
  box.replaceChildren();
  for (const cls of state.tl.data.classes) {
    const on = state.tl.on.has(cls);
    box.append(el("button", { type: "button", class: "chip" + (on ? " on" : ""), style: `color:${colorOf(cls)}`,
      onclick: () => {
        if (on) state.tl.on.delete(cls); else state.tl.on.add(cls);
        if (!state.tl.on.size) state.tl.on.add(cls);
        loadTimeline();
      } }, cls));
  }
}

function tlGeometry() {
  const c = $("#timeline");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  const pad = { l: 36, r: 10, t: 10, b: 22 };
  const tl = state.tl;
  const x = (t) => pad.l + (t - tl.start) / Math.max(1e-9, tl.end - tl.start) * (w - pad.l - pad.r);
  const tOf = (px) => tl.start + (px - pad.l) / (w - pad.l - pad.r) * (tl.end - tl.start);
  return { c, dpr, w, h, pad, x, tOf };
}

function drawTimeline() {
  const tl = state.tl, data = tl.data;
  const g = tlGeometry();
  const ctx = g.c.getContext("2d");
  ctx.setTransform(g.dpr, 0, 0, g.dpr, 0, 0);
  ctx.clearRect(0, 0, g.w, g.h);
  if (!data) {
    ctx.fillStyle = "#687385";
    ctx.fillText("no video yet", g.pad.l, 30);
    return;
  }
  const classes = [...tl.on].filter((c) => data.series[c]);
  if (!data.classes.length) {
    ctx.fillStyle = "#687385";
    ctx.font = "13px system-ui, sans-serif";
    ctx.fillText(`no counts yet: ${data.frames} frames, ${data.labelled_frames} labelled, no detections`,
      g.pad.l + 8, g.pad.t + 24);
  }
  let ymax = 1;
  for (const c of classes) {
    const s = data.series[c];
    const b = s.error_bound || 0;
    for (const v of s.predicted.max) ymax = Math.max(ymax, v + b);
    for (const v of s.labels.max) ymax = Math.max(ymax, v);
  }
  ymax = Math.ceil(ymax);
  const y = (v) => g.h - g.pad.b - v / ymax * (g.h - g.pad.t - g.pad.b);
  // the current query's moments in this video
  ctx.fillStyle = "rgba(250, 204, 21, .30)";
  for (const m of state.moments) {
    if (m.video_id !== tl.video || m.end < tl.start || m.start > tl.end) continue;
    const x0 = g.x(m.start), x1 = Math.max(g.x(m.end) , x0 + 2);
    ctx.fillRect(x0, g.pad.t, x1 - x0, g.h - g.pad.t - g.pad.b);
  }
  // axes
  ctx.strokeStyle = "#dde1e7";
  ctx.fillStyle = "#687385";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  const ystep = Math.max(1, Math.ceil(ymax / 5));
  for (let v = 0; v <= ymax; v += ystep) {
    ctx.beginPath(); ctx.moveTo(g.pad.l, y(v)); ctx.lineTo(g.w - g.pad.r, y(v)); ctx.stroke();
    ctx.fillText(String(v), 8, y(v) + 4);
  }
  const span = tl.end - tl.start;
  const steps = [0.04, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
  const tstep = steps.find((s) => span / s <= Math.max(2, (g.w - g.pad.l) / 80)) || 86400;
  for (let t = Math.ceil(tl.start / tstep) * tstep; t <= tl.end + 1e-9; t += tstep) {
    const px = g.x(t);
    ctx.beginPath(); ctx.moveTo(px, g.pad.t); ctx.lineTo(px, g.h - g.pad.b); ctx.stroke();
    const label = clock(Math.round(t * 100) / 100);
    ctx.fillText(label, Math.min(px - 12, g.w - ctx.measureText(label).width - 2), g.h - 6);
  }
  // each class: error band, prediction line, label dots
  for (const cls of classes) {
    const s = data.series[cls], p = s.predicted, color = colorOf(cls), b = s.error_bound;
    if (p.t.length) {
      if (b) {
        ctx.globalAlpha = 0.13;
        ctx.fillStyle = color;
        ctx.beginPath();
        p.t.forEach((t, i) => ctx.lineTo(g.x(t), y(p.max[i] + b)));
        for (let i = p.t.length - 1; i >= 0; i--) ctx.lineTo(g.x(p.t[i]), y(Math.max(0, p.min[i] - b)));
        ctx.closePath();
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      p.t.forEach((t, i) => (i ? ctx.lineTo(g.x(t), y(p.mean[i])) : ctx.moveTo(g.x(t), y(p.mean[i]))));
      ctx.stroke();
    }
    ctx.fillStyle = color;
    s.labels.t.forEach((t, i) => {
      ctx.beginPath();
      ctx.arc(g.x(t), y(s.labels.mean[i]), 2.6, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
  // hover line
  if (tl.hover !== null) {
    ctx.strokeStyle = "#17202e";
    ctx.beginPath(); ctx.moveTo(tl.hover, g.pad.t); ctx.lineTo(tl.hover, g.h - g.pad.b); ctx.stroke();
  }
  // what is playing
  const pv = state.play;
  if (pv.video === tl.video) {
    const t = pv.offset + $("#player").currentTime;
    if (t >= tl.start && t <= tl.end) {
      ctx.strokeStyle = "#dc2626";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(g.x(t), g.pad.t); ctx.lineTo(g.x(t), g.h - g.pad.b); ctx.stroke();
    }
  }
}

function nearestIndex(ts, t) {
  let lo = 0, hi = ts.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo > 0 && Math.abs(ts[lo - 1] - t) < Math.abs(ts[lo] - t) ? lo - 1 : lo;
}

function timelineHover(ev) {
  const tl = state.tl, data = tl.data;
  if (!data) return;
  const g = tlGeometry();
  const px = ev.offsetX;
  if (drag) {
    const dt = (drag.x - px) / (g.w - g.pad.l - g.pad.r) * (drag.end - drag.start);
    setView(drag.start + dt, drag.end + dt);
    drag.moved = drag.moved || Math.abs(drag.x - px) > 3;
    return;
  }
  tl.hover = px;
  const t = g.tOf(px);
  const lines = [clock(t)];
  for (const cls of tl.on) {
    const s = data.series[cls];
    if (!s) continue;
    let text = `${cls}:`;
    const i = nearestIndex(s.predicted.t, t);
    if (i >= 0) text += ` predicted ${num(s.predicted.mean[i])}` + (s.error_bound ? ` ±${num(s.error_bound, 1)}` : "");
    const j = nearestIndex(s.labels.t, t);
    if (j >= 0 && Math.abs(s.labels.t[j] - t) <= Math.max(data.bucket_seconds, 0.1)) text += ` · label ${num(s.labels.mean[j])}`;
    lines.push(text);
  }
  const tip = $("#tl-tip");
  tip.hidden = false;
  tip.textContent = lines.join("\n");
  tip.style.left = Math.min(px + 12, g.w - tip.offsetWidth - 4) + "px";
  tip.style.top = "8px";
  drawTimeline();
}

let drag = null;

function setView(start, end) {
  const tl = state.tl, full = tl.full;
  const span = Math.min(end - start, full[1] - full[0]);
  start = Math.max(full[0], Math.min(start, full[1] - span));
  tl.start = start;
  tl.end = start + span;
  drawTimeline();
  clearTimeout(tlTimer);
  tlTimer = setTimeout(() => loadTimeline().catch(() => {}), 120);
}

function timelineWheel(ev) {
  ev.preventDefault();
  const tl = state.tl, g = tlGeometry();
  const t = g.tOf(ev.offsetX);
  const f = ev.deltaY > 0 ? 1.25 : 0.8;
  const span = Math.max(0.2, (tl.end - tl.start) * f);
  const a = (t - tl.start) / (tl.end - tl.start);
  setView(t - a * span, t - a * span + span);
}

function timelineClick(ev) {
  if (drag && drag.moved) return;
  const tl = state.tl, g = tlGeometry();
  const t = Math.max(0, g.tOf(ev.offsetX));
  const hit = state.moments.find((m) => m.video_id === tl.video && t >= m.start - 0.05 && t <= m.end + 0.05);
  const name = (state.info.videos.find((v) => v.video_id === tl.video) || {}).name;
  play(tl.video, name, hit ? hit.start : t, hit ? hit.end : t);
}
