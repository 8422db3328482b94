// The live page: polls the service's read-only JSON, draws with plain DOM and SVG, and sends
// feedback with the token the operator typed (kept for this browser tab only).
"use strict";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("anomaly-monitor-token") || "";

function token() { return tokenInput.value.trim(); }

function showTokenState() {
  $("token-state").textContent = token() ? "feedback enabled" : "read-only";
  document.querySelectorAll(".card button").forEach((b) => { b.disabled = !token(); });
}
tokenInput.addEventListener("input", () => { sessionStorage.setItem("anomaly-monitor-token", token()); showTokenState(); });
$("token-form").addEventListener("submit", (e) => e.preventDefault());

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

const fmt = (n, digits = 4) => (n === null || n === undefined || Number.isNaN(n)) ? "–" : Number(n).toPrecision(digits);
const count = (n) => (n ?? 0).toLocaleString("en-US");
const time = (t) => t ? new Date(t).toLocaleString() : "–";

function renderStatus(s) {
  const state = $("state");
  state.textContent = s.state;
  state.className = `badge ${s.state}`;
  // Version 0 is a real model (one trained straight into Models:Path): only the learning state has none.
  $("model").textContent = s.state === "judging" ? `model v${s.modelVersion}` : "no model yet";
  $("instance").textContent = `${s.instance} · ${s.role}`;
  $("degraded").hidden = !s.degraded;
  $("degraded").title = Object.entries(s.storageProblems || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  $("drift").hidden = !s.drift;
  $("held").hidden = !s.windowHeld;
  $("c-items").textContent = count(s.items);
  $("c-anomalies").textContent = count(s.anomalies);
  $("c-rejected").textContent = count(s.rejected);
  $("c-queue").textContent = count(s.queueDepth);
  $("c-normals").textContent = count(s.normalSamples);
  $("c-threshold").textContent = fmt(s.threshold, 3);
}

function renderChart(points) {
  const svg = $("chart");
  const W = 800, H = 220, pad = 6;
  svg.replaceChildren();
  if (points.length === 0) return;
  const values = points.flatMap((p) => [p.score, p.threshold]).filter((v) => v > 0);
  const lo = Math.log(Math.min(...values)), hi = Math.log(Math.max(...values));
  const span = Math.max(hi - lo, 1e-9);
  const x = (i) => pad + (i / Math.max(points.length - 1, 1)) * (W - 2 * pad);
  const y = (v) => H - pad - ((Math.log(Math.max(v, 1e-12)) - lo) / span) * (H - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.threshold).toFixed(1)}`).join(""));
  path.setAttribute("class", "threshold");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "#ef6c00");
  path.setAttribute("stroke-dasharray", "6 4");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(path);
  points.forEach((p, i) => {
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x(i).toFixed(1));
    c.setAttribute("cy", y(p.score).toFixed(1));
    c.setAttribute("r", p.anomaly ? "3.5" : "2");
    c.setAttribute("fill", p.anomaly ? "#c62828" : "#1565c0");
    svg.append(c);
  });
}

async function sendFeedback(card, id, label) {
  const result = card.querySelector(".result");
  result.textContent = "sending…";
  try {
    const response = await fetch("/api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": `Bearer ${token()}` },
      body: JSON.stringify({ id, label }),
    });
    const body = await response.json().catch(() => ({}));
    result.textContent = response.ok ? `marked ${label}` : `${response.status}: ${body.message || body.error || "refused"}`;
    card.dataset.feedback = response.ok ? label : "";
  } catch (e) {
    result.textContent = `failed: ${e.message}`;
  }
}

let shownKeys = "";
function renderAnomalies(items) {
  $("no-anomalies").hidden = items.length > 0;
  const keys = items.map((a) => `${a.key}:${a.feedback || ""}`).join("|");
  if (keys === shownKeys) return; // unchanged: keep the cards (and any result text) as they are
  shownKeys = keys;
  const gallery = $("gallery");
  gallery.replaceChildren(...items.map((a) => {
    const figure = (kind, caption) => el("figure", {}, el("img", { src: a.images[kind], alt: `${caption} of ${a.id}`, className: kind }), el("figcaption", {}, caption));
    const dl = el("dl");
    for (const [k, v] of [["id", a.id], ["score", `${fmt(a.score)} (threshold ${fmt(a.threshold)})`], ["z-score", fmt(a.zScore, 3)],
      ["source", a.source], ["time", time(a.judgedAt)], ["model", `v${a.modelVersion}`]]) {
      dl.append(el("dt", {}, k), el("dd", {}, String(v)));
    }
    const card = el("article", { class: "card", "data-id": a.id, "data-feedback": a.feedback || "" },
      el("div", { class: "images" }, figure("original", "original"), figure("reconstruction", "reconstruction"), figure("heatmap", "error heatmap")),
      dl,
      el("div", { class: "actions" },
        el("button", { class: "normal", type: "button", textContent: "normal", title: "a false alarm: learn it as normal" }),
        el("button", { class: "anomaly", type: "button", textContent: "anomaly", title: "confirmed: keep it out of training" }),
        el("span", { class: "result muted" }, a.feedback ? `marked ${a.feedback}` : "")));
    card.querySelector("button.normal").addEventListener("click", () => sendFeedback(card, a.id, "normal"));
    card.querySelector("button.anomaly").addEventListener("click", () => sendFeedback(card, a.id, "anomaly"));
    return card;
  }));
  showTokenState();
}

function renderModels(m) {
  const versions = $("versions").tBodies[0];
  versions.replaceChildren(...m.versions.map((v) => el("tr", {},
    el("td", {}, v.current ? "●" : ""), el("td", {}, `v${v.version}`), el("td", {}, time(v.createdAt)),
    el("td", {}, v.valid ? (v.decision || "–") : "damaged"), el("td", {}, v.samples ?? "–"),
    el("td", {}, v.gate && v.gate.ratio != null ? Number(v.gate.ratio).toFixed(3) : "–"), el("td", {}, v.origin || "–"))));
  const retrains = $("retrains").tBodies[0];
  retrains.replaceChildren(...(m.retrains || []).slice(0, 10).map((r) => el("tr", {},
    el("td", {}, time(r.at)), el("td", {}, r.result), el("td", {}, r.version ? `v${r.version}` : "–"), el("td", { class: "reason" }, r.reason))));
}

let tick = 0;
async function refresh() {
  try {
    const [status, scores, anomalies] = await Promise.all([getJson("/api/status"), getJson("/api/scores"), getJson("/api/anomalies?limit=12")]);
    renderStatus(status);
    renderChart(scores);
    renderAnomalies(anomalies);
    if (tick++ % 5 === 0) renderModels(await getJson("/api/models"));
    $("error").hidden = true;
  } catch (e) {
    $("error").textContent = `The service does not answer (${e.message}); retrying.`;
    $("error").hidden = false;
  }
}

showTokenState();
refresh();
setInterval(refresh, 2000);
