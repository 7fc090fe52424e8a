/* LensDB web view: the query box: caret errors, the error estimate in words, moments or the aggregate
   table, downloads. */
"use strict";

function estimateWords(est) {
  if (!est) return "";
  if (est.method === "exact" || est.method === "none") return est.note || "";
  const parts = [];
  const pr = (e) => {
    const out = [];
    for (const name of ["precision", "recall"]) {
      const w = e[name];
      if (w) out.push(`${name} ${pct(w.value)} (${pct(w.low)}-${pct(w.high)}) on ${w.n} ${e.basis} labelled frames`);
    }
    return out.join(", ");
  };
  if (est.precision || est.recall) parts.push(pr(est));
  if (est.selection) parts.push("WHERE: " + pr(est.selection));
  for (const [cls, s] of Object.entries(est.classes || {})) {
    if (s) parts.push(`count(${cls}): per-frame error ${num(s.mae)} on average, 95% within ±${num(s.p95_abs_error)}, ` +
      `on ${s.frames} ${s.basis} labelled frames`);
  }
  if (est.note) parts.push(est.note);
  return parts.join(" · ");
}

function queryParams() {
  const p = new URLSearchParams({ q: $("#q").value, source: $("#source").value });
  if ($("#frames-mode").checked) p.set("frames", "true");
  return p;
}

async function runQuery(ev) {
  if (ev) ev.preventDefault();
  const text = $("#q").value.trim();
  if (!text) return;
  $("#query-error").hidden = true;
  $("#run").disabled = true;
  try {
    const res = await api("/query?" + queryParams());
    state.lastQuery = res;
    renderAnswer(res);
  } catch (e) {
    showQueryError(e);
  } finally {
    $("#run").disabled = false;
  }
}

function showQueryError(e) {
  state.lastQuery = null;
  state.moments = [];
  $("#answer").replaceChildren();
  $("#estimate").textContent = "";
  $("#answer-summary").textContent = "";
  $("#downloads").hidden = true;
  $("#query-error").hidden = false;
  $("#query-error-msg").textContent = e.message;
  const pre = $("#query-caret");
  pre.replaceChildren();
  if (e.body && e.body.caret) {
    const lines = e.body.caret.split("\n");
    pre.append(lines.slice(0, -1).join("\n") + "\n", el("span", { class: "caret" }, lines[lines.length - 1]));
  }
  if (typeof e.body.position === "number") {
    const ta = $("#q");
    ta.focus();
    ta.setSelectionRange(e.body.position, Math.min(ta.value.length, e.body.position + 1));
  }
  drawTimeline();
}

function momentOf(row) {
  const start = row.start ?? row.time ?? null;
  if (start === null || row.video === undefined) return null;
  // rows carry video_id where the store gives it; else the name (unique in most stores)
  const id = typeof row.video_id === "number" ? row.video_id : (videoByName(row.video) || {}).video_id;
  return id === undefined ? null : { video_id: id, video: row.video, start, end: row.end ?? start, row };
}

function renderAnswer(res) {
  $("#estimate").textContent = estimateWords(res.estimate);
  $("#downloads").hidden = false;
  const box = $("#answer");
  const playable = res.kind !== "aggregate";
  state.moments = playable ? res.rows.map(momentOf).filter(Boolean) : [];
  const n = res.rows.length;
  $("#answer-summary").textContent = `${n} ${res.kind === "aggregate" ? "row" : res.kind === "frames" ? "frame" : "moment"}${n === 1 ? "" : "s"}` +
    (res.notes.length ? " · " + res.notes.join(" · ") : "") + (playable && n ? " · click one to play it" : "");
  const hidden = playable ? ["frame_id", "frame_index", "video_id"] : res.columns.includes("video") ? ["video_id"] : [];
  const cols = res.columns.filter((c) => !hidden.includes(c));
  const table = el("table", { class: "grid-table", id: "answer-table" },
    el("tr", {}, ...(playable ? [el("th", {}, "")] : []), ...cols.map((c) => el("th", {}, c))));
  res.rows.forEach((row, i) => {
    const m = playable ? momentOf(row) : null;
    const tr = el("tr", m ? { class: "pick moment", "data-i": i, "data-video": m.video, "data-start": m.start,
      "data-end": m.end, onclick: () => playMoment(m, tr) } : {});
    if (playable) {
      const v = m ? m.video_id : null;
      tr.append(el("td", {}, m ? authedImg(async () => {
        const s = await api(`/videos/${v}/still?start=${m.start}&end=${m.end}`);
        if (!s.source_available) throw new Error("source video missing");
        return s.thumbnail + "?boxes=false";
      }, row.video) : ""));
    }
    for (const c of cols) {
      const x = row[c];
      const shown = ["start", "end", "time"].includes(c) ? clock(x) : num(x);
      tr.append(el("td", { class: typeof x === "number" ? "num" : "" }, shown));
    }
    table.append(tr);
  });
  box.replaceChildren(table);
  drawTimeline();
}

async function download(fmt) {
  try {
    const p = queryParams();
    p.set("format", fmt);
    const r = await api("/query/download?" + p, { raw: true });
    const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const a = el("a", { href: URL.createObjectURL(await r.blob()), download: name ? name[1] : "answer." + fmt });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    showQueryError(e);
  }
}
