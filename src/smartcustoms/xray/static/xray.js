// X-ray scan page: drag on the scan to draw a box the detector missed; the form gets its corners in scan pixels.
(function () {
  "use strict";
  function init() {
    var svg = document.getElementById("xray-view");
    var form = document.getElementById("xray-add-box");
    var draft = document.getElementById("xray-draft");
    if (!svg || !form || !draft) return;
    var W = Number(svg.getAttribute("data-width")), H = Number(svg.getAttribute("data-height"));
    var start = null;
    function point(e) {
      var p = svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      var q = p.matrixTransform(svg.getScreenCTM().inverse());
      return { x: Math.min(W, Math.max(0, q.x)), y: Math.min(H, Math.max(0, q.y)) };
    }
    function corners(a, b) {
      return [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)];
    }
    function show(a, b) {
      var c = corners(a, b);
      draft.setAttribute("x", c[0]);
      draft.setAttribute("y", c[1]);
      draft.setAttribute("width", c[2] - c[0]);
      draft.setAttribute("height", c[3] - c[1]);
      draft.setAttribute("visibility", "visible");
    }
    svg.addEventListener("pointerdown", function (e) {
      start = point(e);
      if (svg.setPointerCapture) svg.setPointerCapture(e.pointerId);
      show(start, start);
      e.preventDefault();
    });
    svg.addEventListener("pointermove", function (e) {
      if (start) show(start, point(e));
    });
    svg.addEventListener("pointerup", function (e) {
      if (!start) return;
      var end = point(e);
      show(start, end);
      var c = corners(start, end);
      ["x1", "y1", "x2", "y2"].forEach(function (name, i) {
        form.elements.namedItem(name).value = Math.round(c[i]);
      });
      start = null;
      form.elements.namedItem("label").focus();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
