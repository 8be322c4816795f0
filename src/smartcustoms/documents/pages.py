"""Console page: public document verification. Anyone drops a wrapped document and sees the three checks.

The page is static HTML; the browser posts the file to `POST /documents/verify` (public), so the
page itself holds no logic and nothing is uploaded anywhere else.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["documents pages"])

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Verify a trade document — Smart Customs</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  #drop { border: 2px dashed #888; border-radius: 8px; padding: 2.5rem; text-align: center; cursor: pointer; }
  #drop.over { background: #eef5ff; border-color: #2a6ebb; }
  table { border-collapse: collapse; width: 100%; margin-top: 1.5rem; }
  th, td { text-align: left; padding: .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  .valid { color: #17702b; font-weight: 600; } .invalid { color: #b00020; font-weight: 600; }
  .unknown { color: #8a6d00; font-weight: 600; }
  #summary { font-size: 1.2rem; margin-top: 1rem; }
</style>
</head>
<body>
<h1>Verify a trade document</h1>
<p>Certificates of origin, bills of lading and invoices issued as OpenAttestation (TradeTrust) documents.
Drop the <code>.json</code> file below. Nothing is stored.</p>
<div id="drop" tabindex="0" role="button" aria-label="Choose a document file">
  Drop a document here, or click to choose a file
  <input id="file" type="file" accept=".json,.tt,application/json" hidden>
</div>
<div id="summary" aria-live="polite"></div>
<table id="checks" hidden>
  <thead><tr><th>Check</th><th>Result</th><th>Reason</th></tr></thead>
  <tbody></tbody>
</table>
<script>
const drop = document.getElementById("drop"), input = document.getElementById("file");
const summary = document.getElementById("summary"), table = document.getElementById("checks");
const labels = {integrity: "Integrity (not changed)", status: "Status (issued, not revoked)", identity: "Identity (issuer's key)"};
drop.addEventListener("click", () => input.click());
drop.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") input.click(); });
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); check(e.dataTransfer.files[0]); });
input.addEventListener("change", () => check(input.files[0]));
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
async function check(file) {
  if (!file) return;
  table.hidden = true; summary.textContent = "Checking " + file.name + "…";
  let body;
  try { body = JSON.parse(await file.text()); } catch (e) { summary.textContent = "This file is not valid JSON."; return; }
  const r = await fetch("verify", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const v = await r.json();
  if (!r.ok) { summary.textContent = (v.problems || []).map(p => p.message).join("; ") || "Verification failed."; return; }
  summary.textContent = v.valid ? "✔ The document verifies." : "✘ The document does not verify.";
  summary.className = v.valid ? "valid" : "invalid";
  const tbody = table.querySelector("tbody"); tbody.replaceChildren();
  for (const name of ["integrity", "status", "identity"]) {
    const c = v.checks[name], tr = document.createElement("tr");
    tr.append(cell(labels[name]), cell(c.status, c.status), cell(c.reason));
    tbody.append(tr);
  }
  table.hidden = false;
}
</script>
</body>
</html>
"""


@router.get("/documents/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_page() -> str:
    """Public page: no sign-in needed to check a document."""
    return _PAGE
