"""Console pages: the live map (zones, routes, corridors, vehicles, alerts) and a trip's track replay.

Static HTML + a little JavaScript that draws SVG from `/tracking/map`, `/tracking/vehicles` and the
alert stream; no internet map tiles: the base layer is a generated graticule. API calls use the
console session cookie, or a bearer token kept in the browser (`localStorage.scToken`).
"""

from __future__ import annotations

import html
import json

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["tracking pages"])

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ — Smart Customs</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; display: grid;
         grid-template-columns: minmax(0, 1fr) 24rem; height: 100vh; }
  header { grid-column: 1 / 3; padding: .5rem 1rem; background: #12355b; color: white; }
  #map { width: 100%; height: calc(100vh - 3rem); background: #f4f1ea; }
  aside { overflow-y: auto; height: calc(100vh - 3rem); border-left: 1px solid #ccc; padding: 0 .75rem; }
  .alert { border-bottom: 1px solid #ddd; padding: .5rem 0; }
  .critical, .high { color: #b00020; } .medium { color: #8a6d00; }
  .zone { fill: #cfe3c4; stroke: #5a8f47; } .corridor { fill: #d8e4f2; stroke: none; opacity: .8; }
  .route { fill: none; stroke: #2a6ebb; stroke-width: 2; } .grid { stroke: #ddd7c8; stroke-width: 1; }
  .vehicle { fill: #12355b; } .alerted { fill: #b00020; } .track { fill: none; stroke: #12355b; stroke-width: 2; }
  button { margin-right: .25rem; }
</style>
</head>
<body>
<header><strong>Smart Customs</strong> — __TITLE__</header>
"""

_JS_COMMON = """
const token = localStorage.getItem("scToken");
const auth = token ? {Authorization: "Bearer " + token} : {};
// EventSource cannot send headers: a token kept in the browser also travels as the session cookie
if (token && !document.cookie.includes("sc_session=")) document.cookie = "sc_session=" + token + "; path=/; SameSite=Strict";
async function api(path, options = {}) {
  const r = await fetch(path, {credentials: "same-origin", ...options, headers: {...auth, ...(options.headers || {})}});
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}
const svg = document.getElementById("map"), NS = "http://www.w3.org/2000/svg";
let box = null;
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
      el("title", {}, e).textContent = p.zone_id || p.route_id || ("corridor " + p.corridor_of);
    }
  }
}
function text(tag, value, parent) { const e = document.createElement(tag); e.textContent = value; parent.appendChild(e); return e; }
"""

_CONSOLE = (
    _HEAD
    + """<svg id="map" viewBox="0 0 1040 740" role="img" aria-label="Live map of bonded transports"></svg>
<aside>
  <h2>Alerts <small id="live"></small></h2>
  <div id="alerts" aria-live="polite"></div>
</aside>
<script>"""
    + _JS_COMMON
    + """
const list = document.getElementById("alerts"), dots = {};
function showAlert(a) {
  const div = document.createElement("div");
  div.className = "alert " + a.severity; div.dataset.id = a.id || "";
  text("strong", a.type + " — " + a.trip_id, div);
  text("div", a.reason, div);
  text("small", (a.start || "") + (a.status ? " · " + a.status : ""), div);
  if (a.id && a.status !== "closed") {
    const bar = document.createElement("div");
    for (const action of ["acknowledge", "close"]) {
      const b = text("button", action, bar);
      b.onclick = async () => {
        const note = prompt("Note for " + action); if (!note) return;
        await api(`/tracking/alerts/${a.id}/${action}`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({note})});
        refresh();
      };
    }
    div.appendChild(bar);
  }
  const link = document.createElement("a"); link.href = "/tracking/console/trips/" + encodeURIComponent(a.trip_id);
  link.textContent = " trip"; div.appendChild(link);
  list.prepend(div);
  if (a.latitude !== undefined && box) {
    const [x, y] = xy([a.longitude, a.latitude]);
    el("circle", {cx: x, cy: y, r: 7, class: "alerted"});
  }
}
async function refresh() {
  list.innerHTML = "";
  (await api("/tracking/alerts")).reverse().forEach(showAlert);
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
    es.onopen = () => live.textContent = "live";
    es.onerror = () => live.textContent = "polling";
  } catch (e) { live.textContent = "polling"; }
  setInterval(refresh, 15000);
})();
</script>
</body>
</html>"""
)

_TRIP = (
    _HEAD
    + """<svg id="map" viewBox="0 0 1040 740" role="img" aria-label="Track of trip __TRIP_ID__"></svg>
<aside>
  <h2>Trip __TRIP_ID__</h2>
  <p id="summary"></p>
  <label>Replay <input id="slider" type="range" min="0" value="0" style="width: 100%"></label>
  <p id="at"></p>
  <h3>Alert history</h3>
  <div id="alerts"></div>
</aside>
<script>"""
    + _JS_COMMON
    + """
const tripId = __TRIP_JSON__;
(async () => {
  const d = await api("/tracking/trips/" + encodeURIComponent(tripId));
  const coords = d.positions.map(p => [p.longitude, p.latitude]);
  await drawLayers(coords);
  if (coords.length) el("path", {d: path(coords), class: "track"});
  const dot = el("circle", {r: 6, class: "vehicle"});
  document.getElementById("summary").textContent = `${d.trip.status} · ${d.trip.origin_zone} → ${d.trip.destination_zone} · deadline ${d.trip.deadline}`;
  const slider = document.getElementById("slider"), at = document.getElementById("at");
  slider.max = Math.max(coords.length - 1, 0);
  slider.oninput = () => {
    const p = d.positions[slider.value]; if (!p) return;
    const [x, y] = xy([p.longitude, p.latitude]); dot.setAttribute("cx", x); dot.setAttribute("cy", y);
    at.textContent = p.time + (p.seal ? " · seal " + p.seal : "");
  };
  slider.value = slider.max; slider.oninput();
  const list = document.getElementById("alerts");
  for (const a of d.alerts) {
    const div = document.createElement("div"); div.className = "alert " + a.severity;
    text("strong", a.type + " (" + a.status + ")", div); text("div", a.reason, div);
    text("small", a.start + " → " + (a.end || "open"), div);
    if (a.close_note) text("div", "closed by " + a.closed_by + ": " + a.close_note, div);
    list.appendChild(div);
    const [x, y] = xy([a.longitude, a.latitude]); el("circle", {cx: x, cy: y, r: 7, class: "alerted"});
  }
})();
</script>
</body>
</html>"""
)


@router.get("/tracking/console", response_class=HTMLResponse)
def console_page() -> str:
    """Live map and alert list (data comes from the authenticated API, the page itself is static)."""
    return _CONSOLE.replace("__TITLE__", "Bonded transport monitoring")


@router.get("/tracking/console/trips/{trip_id}", response_class=HTMLResponse)
def trip_page(trip_id: str) -> str:
    """Track replay and alert history of one trip."""
    safe = html.escape(trip_id)
    trip_json = json.dumps(trip_id).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return _TRIP.replace("__TRIP_JSON__", trip_json).replace("__TITLE__", f"Trip {safe}").replace("__TRIP_ID__", safe)
