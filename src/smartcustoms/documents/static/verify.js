// Public verification page: read the dropped file, post it to POST /documents/verify, show the three checks.
(function () {
  "use strict";
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const summary = document.getElementById("summary");
  const result = document.getElementById("result");
  const format = document.getElementById("format");
  const labels = {};
  document.getElementById("labels").content.querySelectorAll("[data-status]").forEach((el) => {
    labels[el.dataset.status] = el.textContent;
  });

  function say(text, cls) {
    summary.textContent = text;
    summary.className = "verify-summary" + (cls ? " " + cls : "");
  }

  async function check(file) {
    if (!file) return;
    result.hidden = true;
    say(summary.dataset.checking + " " + file.name + "…");
    let body;
    try {
      body = JSON.parse(await file.text());
    } catch (e) {
      say(summary.dataset.notJson, "is-invalid");
      return;
    }
    let response, verdict;
    try {
      response = await fetch("/documents/verify", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept-Language": document.documentElement.lang || "en" },
        body: JSON.stringify(body),
      });
      verdict = await response.json();
    } catch (e) {
      say(summary.dataset.failed, "is-invalid");
      return;
    }
    if (!response.ok) {
      const problems = (verdict.problems || []).map((p) => p.message).join("; ");
      say(problems || summary.dataset.failed, "is-invalid");
      return;
    }
    const statuses = ["integrity", "status", "identity"].map((name) => verdict.checks[name].status);
    if (verdict.valid && statuses.every((s) => s === "valid")) say(summary.dataset.valid, "is-valid");
    else if (verdict.valid) say(summary.dataset.unknown, "is-unknown");
    else say(summary.dataset.invalid, "is-invalid");
    for (const row of result.querySelectorAll("tr[data-check]")) {
      const c = verdict.checks[row.dataset.check];
      const cell = row.querySelector(".verdict");
      cell.textContent = labels[c.status] || c.status;
      cell.className = "verdict is-" + c.status;
      row.dataset.status = c.status;
      const localized = (verdict.localized || {}).checks || {};
      row.querySelector(".reason").textContent = localized[row.dataset.check] || c.reason;
    }
    format.textContent = format.dataset.label + ": " + verdict.format;
    result.hidden = false;
  }

  input.addEventListener("change", () => check(input.files[0]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("is-over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("is-over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("is-over");
    check(e.dataTransfer.files[0]);
  });
})();
