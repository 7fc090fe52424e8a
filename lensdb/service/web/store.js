/* LensDB web view: the store panel: videos, classes, count models, ingest jobs and the ingest form. */
"use strict";

const NO_STORE = { store: "", videos: [], frames: 0, labelled_frames: 0, classes: {}, count_models: [],
  vectors: 0, store_bytes: 0, embedder: null };

async function loadInfo() {
  let info;
  try {
    info = await api("/info");
  } catch (e) {
    if (e.status !== 400) throw e;
    // no store yet (or one that cannot be read): say so; an ingest below creates it
    info = Object.assign({}, NO_STORE, { problem: e.message });
  }
  const key = JSON.stringify([info.problem, info.frames, info.labelled_frames, info.videos.map((v) => [v.status, v.frames]),
    info.count_models.length]);
  const changed = key !== state.infoKey;
  state.info = info;
  state.infoKey = key;
  if (changed) renderStore(info);
  return changed;
}

function renderStore(info) {
  $("#store-name").textContent = info.store;
  if (info.problem) {
    $("#store-summary").textContent = info.problem;
    return;
  }
  const embedder = info.embedder ? info.embedder.split("@")[0] : "none yet";
  $("#store-summary").textContent =
    `${info.videos.length} video${info.videos.length === 1 ? "" : "s"} · ${info.frames} frames · ` +
    `${info.labelled_frames} labelled · embedder ${embedder}` +
    (info.dim ? ` (${info.dim}-d)` : "") +
    (info.codec ? ` · codec ${info.codec}, ${info.bytes_per_vector} B/vector` : "") +
    ` · ${info.vectors} vectors · ${bytes(info.store_bytes)}`;
  if (!$("#ingest-embedder").value && info.embedder) $("#ingest-embedder").placeholder = embedder;

  const vt = $("#videos");
  vt.replaceChildren(el("tr", {}, ...["video", "status", "duration", "frames", "labelled"].map((h) => el("th", {}, h))));
  for (const v of info.videos) {
    vt.append(el("tr", { class: "pick", title: v.message || "show on the timeline",
      onclick: () => selectVideo(v.video_id) },
    el("td", {}, v.name), el("td", { class: "status-" + v.status }, v.status),
    el("td", { class: "num" }, clock(v.duration)), el("td", { class: "num" }, String(v.frames)),
    el("td", { class: "num" }, String(v.labelled))));
  }
  const chips = $("#classes");
  chips.replaceChildren();
  for (const [cls, c] of Object.entries(info.classes || {})) {
    chips.append(el("span", { class: "chip static", title: `${c.frames_with} labelled frames with at least one` },
      `${cls} ${c.detections}`));
  }
  if (!chips.children.length) chips.append(el("span", { class: "muted" }, "no detections yet"));

  const mt = $("#models");
  mt.replaceChildren(el("tr", {}, ...["class", "method", "fill-in MAE", "labels", ""].map((h) => el("th", {}, h))));
  for (const m of info.count_models.filter((x) => x.active)) {
    const met = m.metrics || {};
    const mae = met.fill_in && met.fill_in.model ? met.fill_in.model.mae : met.mae;
    mt.append(el("tr", { title: m.why || "" }, el("td", {}, m.class), el("td", {}, `${m.method} ${m.size || ""}`),
      el("td", { class: "num" }, num(mae)), el("td", { class: "num" }, String(m.train_frames ?? "–")),
      el("td", { class: "muted small" }, "active")));
  }
  if (mt.children.length === 1) mt.append(el("tr", {}, el("td", { colspan: 5, class: "muted" },
    "none: run lensdb train-counter to predict counts on unlabelled frames")));

  const sel = $("#tl-video");
  const current = sel.value;
  sel.replaceChildren(...info.videos.map((v) => el("option", { value: v.video_id }, v.name)));
  if (info.videos.length) {
    const keep = info.videos.some((v) => String(v.video_id) === current);
    sel.value = keep ? current : String(info.videos[0].video_id);
  }
}

async function loadJobs() {
  const { jobs } = await api("/jobs");
  const box = $("#jobs");
  box.replaceChildren();
  state.jobsActive = jobs.some((j) => ["queued", "running", "stopping"].includes(j.state));
  for (const j of jobs.slice(-6).reverse()) {
    const v = j.videos.length ? j.videos[j.videos.length - 1] : null;
    const total = v && v.total ? v.total : null;
    const done = v ? v.done : 0;
    const fps = j.frames_per_second || 0;
    const eta = total && fps ? Math.max(0, (total - done) / fps) : null;
    const line = `${j.state} · ${j.frames} frames · ${num(fps, 1)} frames/s` +
      (eta !== null && j.state === "running" ? ` · ETA ${clock(eta)}` : "") +
      (total === null && j.state === "running" ? " · live" : "");
    const card = el("div", { class: "job" },
      el("div", {}, el("b", {}, (j.sources[0] || "").split("/").pop()), " ", el("span", { class: "muted" }, line)));
    if (total) card.append(el("div", { class: "bar" }, el("div", { style: `width:${Math.min(100, 100 * done / total)}%` })));
    if (j.error) card.append(el("div", { class: "error-text" }, j.error));
    if (["queued", "running"].includes(j.state)) {
      card.append(el("button", { type: "button", onclick: async () => {
        await api(`/jobs/${j.id}`, { method: "DELETE" }).catch(() => {});
        loadJobs();
      } }, "Stop"));
    }
    box.append(card);
  }
}

async function startIngest(ev) {
  ev.preventDefault();
  $("#ingest-error").textContent = "";
  const src = $("#ingest-source").value.trim();
  const options = {};
  if ($("#ingest-detector").value.trim()) options.detector = $("#ingest-detector").value.trim();
  if ($("#ingest-embedder").value.trim()) options.embedder = $("#ingest-embedder").value.trim();
  if ($("#ingest-every").value) options.detect_every = Number($("#ingest-every").value);
  for (const pair of $("#ingest-options").value.split(/\s+/).filter(Boolean)) {
    const [k, ...rest] = pair.split("=");
    const v = rest.join("=");
    options[k.replace(/^--/, "").replace(/-/g, "_")] =
      v === "true" ? true : v === "false" ? false : v !== "" && !isNaN(Number(v)) ? Number(v) : v;
  }
  const body = /^[a-z][a-z0-9+.-]*:\/\//i.test(src) ? { url: src, options } : { path: src, options };
  try {
    await api("/ingest", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    $("#ingest-source").value = "";
    loadJobs();
  } catch (e) {
    $("#ingest-error").textContent = e.message;
  }
}
