/* LensDB web view: search, live updates (polling) and the wiring. Loaded last. */
"use strict";

async function runSearch(ev) {
  ev.preventDefault();
  $("#search-error").textContent = "";
  const grid = $("#search-grid");
  const p = new URLSearchParams({ k: $("#search-k").value || "8" });
  if ($("#search-where").value.trim()) p.set("where", $("#search-where").value.trim());
  const file = $("#search-image").files[0];
  let res;
  try {
    if (file) {
      res = await api("/search?" + p, { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
    } else {
      if ($("#search-like").value !== "") p.set("like", $("#search-like").value);
      else if ($("#search-text").value.trim()) p.set("q", $("#search-text").value.trim());
      else throw new Error("give a text, a frame id or an image");
      res = await api("/search?" + p);
    }
  } catch (e) {
    $("#search-error").textContent = e.message;
    grid.replaceChildren();
    return;
  }
  grid.replaceChildren(...res.hits.map((h) => el("div", { class: "thumb-card", title: "click to play",
    onclick: () => play(h.video_id, h.video, h.ts, h.ts) },
  authedImg(h.thumbnail + "?boxes=false", `frame ${h.frame_id}`),
  el("div", {}, el("b", {}, h.score.toFixed(3)), ` · ${h.video} · ${clock(h.ts)}`),
  el("div", { class: "muted" }, Object.entries(h.counts).filter(([, n]) => n >= 0.5).slice(0, 3)
    .map(([c, n]) => `${c} ${num(n, 1)}`).join(", ") || "nothing counted"))));
  if (!res.hits.length) $("#search-error").textContent = "no hits";
}

/* ---------- live updates ---------- */

let pollCount = 0;

async function poll() {
  try {
    if (!state.offline) {
      await loadJobs();
      pollCount += 1;
      if (state.jobsActive || pollCount % 3 === 0) {
        const changed = await loadInfo();
        if (changed) {
          const tl = state.tl;
          if (tl.video === null && state.info.videos.length) await selectVideo(state.info.videos[0].video_id);
          else if (tl.video !== null) {
            const v = state.info.videos.find((x) => x.video_id === tl.video);
            // a view that shows the whole video follows it as it grows; a zoomed one stays
            const whole = tl.start <= tl.full[0] + 1e-6 && tl.end >= tl.full[1] - 1e-6;
            if (v && v.duration > tl.full[1]) tl.full[1] = v.duration;
            if (whole) tl.full[1] = Math.max(tl.full[1], v ? v.duration || 0 : 0);
            await loadTimeline(whole);
          }
        }
      }
    }
  } catch (e) { /* goneAway() has said so; the retry brings the page back */ }
  setTimeout(poll, POLL_MS);
}

async function refreshAll() {
  try {
    state.infoKey = "";
    await loadInfo();
    await loadJobs();
    const tl = state.tl;
    if (state.info.videos.length) await selectVideo(tl.video ?? state.info.videos[0].video_id, true);
  } catch (e) { /* offline or refused: the banner or the prompt says so */ }
}

/* ---------- wiring ---------- */

function init() {
  const ex = $("#examples");
  for (const q of EXAMPLES) {
    ex.append(el("button", { type: "button", class: "chip", onclick: () => { $("#q").value = q; runQuery(); } }, q));
  }
  $("#query-form").addEventListener("submit", runQuery);
  $("#q").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); runQuery(); }
  });
  document.querySelectorAll("#downloads button").forEach((b) => b.addEventListener("click", () => download(b.dataset.fmt)));
  $("#ingest-form").addEventListener("submit", startIngest);
  $("#search-form").addEventListener("submit", runSearch);
  $("#tl-video").addEventListener("change", (ev) => selectVideo(Number(ev.target.value)).catch(() => {}));
  $("#tl-reset").addEventListener("click", () => setView(state.tl.full[0], state.tl.full[1]));
  const c = $("#timeline");
  c.addEventListener("mousemove", timelineHover);
  c.addEventListener("mouseleave", () => { state.tl.hover = null; $("#tl-tip").hidden = true; drag = null; drawTimeline(); });
  c.addEventListener("wheel", timelineWheel, { passive: false });
  c.addEventListener("mousedown", (ev) => { drag = { x: ev.offsetX, start: state.tl.start, end: state.tl.end, moved: false }; });
  c.addEventListener("mouseup", (ev) => { timelineClick(ev); drag = null; });
  window.addEventListener("resize", () => { drawTimeline(); clearTimeout(tlTimer); tlTimer = setTimeout(() => loadTimeline().catch(() => {}), 200); });
  const params = new URLSearchParams(location.search);
  if (params.get("q")) $("#q").value = params.get("q");
  refreshAll().then(() => { if (params.get("q")) runQuery(); });
  setTimeout(poll, POLL_MS);
  $("#player").addEventListener("timeupdate", stopAfterMoment);
  requestAnimationFrame(drawOverlay);
}

init();
