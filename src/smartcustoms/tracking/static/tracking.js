// Tracking console: SVG map (zones, routes, corridors, a generated graticule; no internet tiles), vehicles
// and alerts from the API (console session cookie), live over server-sent events with polling as fallback.
// Every word shown comes from the page (#tracking-strings, in the page's language); alert reasons come
// translated from the API (`?lang=`).
(() => {
"use strict";
const S = JSON.parse(document.getElementById("tracking-strings").textContent);
const layout = document.querySelector(".tracking-layout");
const lang = layout.dataset.lang || "en";
const svg = document.getElementById("map"), NS = "http://www.w3.org/2000/svg";
let box = null;

function withLang(path) { return path + (path.includes("?") ? "&" : "?") + "lang=" + encodeURIComponent(lang); }
async function api(path, options = {}) {
  const r = await fetch(withLang(path), {credentials: "same-origin", ...options});
  if (!r.ok) throw new Error(S.failed + ": " + r.status);
  return r.json();
}
function word(group, key) { return (S[group] && S[group][key]) || key; }
function reasonOf(a) { return (a.localized && a.localized.reason) || a.reason; }
function extend(coords) {
  for (const [lon, lat] of coords) {
    if (!box) box = {x0: lon, x1: lon, y0: lat, y1: lat};
    box.x0 = Math.min(box.x0, lon); box.x1 = Math.max(box.x1, lon);
    box.y0 = Math.min(box.y0, lat); box.y1 = Math.max(box.y1, lat);
  }
}
function rings(g) {
  if (g.type === "Polygon") return g.coordinates;
  if (g.type === "MultiPolygon") return g.coordinates.flat();
  if (g.type === "LineString") return [g.coordinates];
  if (g.type === "MultiLineString") return g.coordinates;
  return [];
}
function xy([lon, lat]) {
  const k = Math.cos((box.y0 + box.y1) / 2 * Math.PI / 180);
  const w = (box.x1 - box.x0) * k || 1e-6, h = (box.y1 - box.y0) || 1e-6, s = Math.min(1000 / w, 700 / h);
  return [20 + (lon - box.x0) * k * s, 720 - (lat - box.y0) * s];
}
function el(name, attrs, parent = svg) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  parent.appendChild(e); return e;
}
function path(coords, closed) { return coords.map((c, i) => (i ? "L" : "M") + xy(c).join(",")).join(" ") + (closed ? "Z" : ""); }
function graticule() {
  const step = Math.max((box.x1 - box.x0), (box.y1 - box.y0)) / 10 || 0.01;
  for (let lon = Math.floor(box.x0 / step) * step; lon <= box.x1 + step; lon += step)
    el("path", {d: path([[lon, box.y0 - step], [lon, box.y1 + step]]), class: "grid"});
  for (let lat = Math.floor(box.y0 / step) * step; lat <= box.y1 + step; lat += step)
    el("path", {d: path([[box.x0 - step, lat], [box.x1 + step, lat]]), class: "grid"});
}
async function drawLayers(extra) {
  const layers = await api("/tracking/map");
  for (const f of layers.features) rings(f.geometry).forEach(extend);
  if (extra) extend(extra);
  if (!box) return;
  graticule();
  for (const f of layers.features) {
    const p = f.properties, cls = p.zone_id ? "zone" : p.corridor_of ? "corridor" : "route";
    for (const r of rings(f.geometry)) {
      const e = el("path", {d: path(r, cls !== "route"), class: cls});
      el("title", {}, e).textContent = p.zone_id || p.route_id || (S.corridor + " " + p.corridor_of);
    }
  }
}
function text(tag, value, parent) { const e = document.createElement(tag); e.textContent = value; parent.appendChild(e); return e; }

function consolePage() {
  const list = document.getElementById("alerts"), dots = {};
  function showAlert(a) {
    const div = document.createElement("div");
    div.className = "alert " + a.severity; div.dataset.id = a.id || "";
    div.dataset.type = a.type;
    text("strong", word("types", a.type) + " — " + a.trip_id, div);
    text("div", reasonOf(a), div);
    text("small", (a.start || "") + (a.status ? " · " + word("statuses", a.status) : ""), div);
    if (a.id && a.status !== "closed") {
      const bar = document.createElement("div");
      for (const action of ["acknowledge", "close"]) {
        const b = text("button", S[action], bar);
        b.type = "button"; b.dataset.action = action;
        b.onclick = async () => {
          const note = prompt(S["note_" + action]); if (!note) return;
          await api(`/tracking/alerts/${a.id}/${action}`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({note})});
          refresh();
        };
      }
      div.appendChild(bar);
    }
    const link = document.createElement("a"); link.href = "/tracking/console/trips/" + encodeURIComponent(a.trip_id);
    link.textContent = " " + S.trip; div.appendChild(link);
    list.prepend(div);
    if (a.latitude !== undefined && box) {
      const [x, y] = xy([a.longitude, a.latitude]);
      el("circle", {cx: x, cy: y, r: 7, class: "alerted"});
    }
  }
  async function refresh() {
    const alerts = await api("/tracking/alerts");
    list.innerHTML = "";
    alerts.reverse().forEach(showAlert);
    for (const v of await api("/tracking/vehicles")) {
      if (!box) continue;
      const [x, y] = xy([v.longitude, v.latitude]);
      const dot = dots[v.trip_id] || (dots[v.trip_id] = el("circle", {r: 5, class: "vehicle"}));
      dot.setAttribute("cx", x); dot.setAttribute("cy", y);
    }
  }
  (async () => {
    await drawLayers();
    await refresh();
    const live = document.getElementById("live");
    try {
      const es = new EventSource("/tracking/alerts/stream");
      es.addEventListener("alert", () => refresh());
      es.onopen = () => { live.textContent = S.live; live.dataset.state = "live"; };
      es.onerror = () => { live.textContent = S.polling; live.dataset.state = "polling"; };
    } catch (e) { live.textContent = S.polling; live.dataset.state = "polling"; }
    setInterval(refresh, 15000);
  })();
}

function tripPage() {
  const tripId = layout.dataset.trip;
  (async () => {
    const d = await api("/tracking/trips/" + encodeURIComponent(tripId));
    const coords = d.positions.map(p => [p.longitude, p.latitude]);
    await drawLayers(coords);
    if (coords.length) el("path", {d: path(coords), class: "track"});
    const dot = el("circle", {r: 6, class: "vehicle"});
    document.getElementById("summary").textContent = word("trip_statuses", d.trip.status) + " · " + d.trip.origin_zone
      + " → " + d.trip.destination_zone + " · " + S.deadline + " " + d.trip.deadline;
    const slider = document.getElementById("slider"), at = document.getElementById("at");
    slider.max = Math.max(coords.length - 1, 0);
    slider.oninput = () => {
      const p = d.positions[slider.value]; if (!p) return;
      const [x, y] = xy([p.longitude, p.latitude]); dot.setAttribute("cx", x); dot.setAttribute("cy", y);
      at.textContent = p.time + (p.seal ? " · " + S.seal + " " + word("seals", p.seal) : "");
    };
    slider.value = slider.max; slider.oninput();
    const list = document.getElementById("alerts");
    for (const a of d.alerts) {
      const div = document.createElement("div"); div.className = "alert " + a.severity;
      text("strong", word("types", a.type) + " (" + word("statuses", a.status) + ")", div); text("div", reasonOf(a), div);
      text("small", a.start + " → " + (a.end || S.still_open), div);
      if (a.close_note) text("div", S.closed_by + " " + a.closed_by + ": " + a.close_note, div);
      list.appendChild(div);
      const [x, y] = xy([a.longitude, a.latitude]); el("circle", {cx: x, cy: y, r: 7, class: "alerted"});
    }
  })();
}

if (layout.dataset.trip !== undefined) tripPage(); else consolePage();
})();
