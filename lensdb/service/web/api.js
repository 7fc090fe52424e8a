/* LensDB web view (plain scripts, no libraries; it talks only to the JSON API of docs/api.md):
   the page's state, the API client (token prompt, errors, a server that goes away) and
   small DOM and number helpers. Loaded first; the other scripts share its globals. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const EXAMPLES = [  // the README's, one click away
  "count(person) > 3 AND count(car) >= 1",
  "count(car) >= 2",
  "count(car) = 0 AND time BETWEEN 10s AND 2m",
  "avg(count(car)) WHERE count(person) > 0 BY video",
  "max(count(person)), frames BY 10s",
  "count(car) >= 2 LIMIT 5 GAP 30s",
  "video LIKE 'street%' AND NOT count(bicycle) = 0",
];
const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2"];
const POLL_MS = 2000;
const RETRY_MS = 3000;

const state = {
  token: sessionStorage.getItem("lensdb.token") || "",
  info: null, infoKey: "", jobsActive: false,
  moments: [], lastQuery: null,
  tl: { video: null, start: 0, end: 0, full: [0, 0], data: null, on: new Set(), hover: null },
  play: { video: null, offset: 0, boxes: [], spacing: 0.2, blobUrl: null },
  offline: false,
};

/* ---------- the API: token, errors, a server that goes away ---------- */

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let tokenWaiter = null;

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  let r;
  try {
    r = await fetch(path, { method: opts.method || "GET", body: opts.body, headers });
  } catch (e) {
    goneAway();
    throw new ApiError(0, { error: "the server cannot be reached" });
  }
  backOnline();
  if (r.status === 401) {
    await askToken(state.token ? "That token was refused; try again." : "");
    return api(path, opts);
  }
  if (!r.ok) {
    let body;
    try { body = await r.json(); } catch (e) { body = { error: `HTTP ${r.status}` }; }
    throw new ApiError(r.status, body);
  }
  return opts.raw ? r : r.json();
}

function askToken(message) {
  if (!tokenWaiter) {
    tokenWaiter = new Promise((resolve) => {
      const dlg = $("#token-dialog");
      $("#token-error").textContent = message;
      $("#token-input").value = "";
      $("#token-form").onsubmit = (ev) => {
        ev.preventDefault();
        state.token = $("#token-input").value.trim();
        sessionStorage.setItem("lensdb.token", state.token);
        dlg.close();
        tokenWaiter = null;
        resolve();
      };
      dlg.addEventListener("cancel", (ev) => ev.preventDefault());
      if (!dlg.open) dlg.showModal();
    });
  }
  return tokenWaiter;
}

let retryTimer = null;

function goneAway() {
  if (!state.offline) {
    state.offline = true;
    $("#conn").textContent = "disconnected";
    $("#conn").className = "conn down";
  }
  const banner = $("#banner");
  banner.hidden = false;
  banner.textContent = `The LensDB server does not answer; retrying every ${RETRY_MS / 1000} s…`;
  if (!retryTimer) retryTimer = setTimeout(retryHealth, RETRY_MS);
}

async function retryHealth() {
  retryTimer = null;
  try {
    const r = await fetch("/health", { headers: state.token ? { Authorization: "Bearer " + state.token } : {} });
    if (r.ok || r.status === 401) { backOnline(); refreshAll(); return; }
  } catch (e) { /* still away */ }
  goneAway();
}

function backOnline() {
  if (state.offline || $("#conn").textContent !== "connected") {
    state.offline = false;
    $("#banner").hidden = true;
    $("#conn").textContent = "connected";
    $("#conn").className = "conn ok";
  }
}

/* ---------- small helpers ---------- */

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

const pct = (x) => `${Math.round(x * 100)}%`;
function num(x, digits = 2) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}
function clock(t) {
  if (t === null || t === undefined) return "–";
  const h = Math.floor(t / 3600), m = Math.floor((t - h * 3600) / 60), s = t - h * 3600 - m * 60;
  if (h) return `${h}:${String(m).padStart(2, "0")}:${String(Math.floor(s)).padStart(2, "0")}`;
  const cs = (Math.floor(s * 100 + 1e-6) / 100).toFixed(2);  // never "60.00"
  return m ? `${m}:${cs.padStart(5, "0")}` : `${cs}s`;
}
function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}
function colorOf(cls) {
  const all = (state.tl.data && state.tl.data.classes) || [];
  const i = Math.max(0, all.indexOf(cls));
  return COLORS[i % COLORS.length];
}
function videoByName(name) {
  return ((state.info && state.info.videos) || []).find((v) => v.name === name) || null;
}

/* An image whose bytes are fetched with the token (an <img src> cannot send it). */
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    seen.unobserve(e.target);
    e.target._load();
  }
});
function authedImg(urlOrPromise, alt) {
  const img = el("img", { alt: alt || "" });
  img._load = async () => {
    try {
      const url = typeof urlOrPromise === "function" ? await urlOrPromise() : urlOrPromise;
      const r = await api(url, { raw: true });
      img.src = URL.createObjectURL(await r.blob());
    } catch (e) {
      img.replaceWith(el("div", { class: "muted small", title: e.message }, "no image: " + e.message));
    }
  };
  seen.observe(img);
  return img;
}
