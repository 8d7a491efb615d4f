// jobpool dashboard: live figures and charts for the overview page. No library, no inline
// script (the Content-Security-Policy forbids it): values are set with textContent and SVG
// elements built with createElementNS, so nothing read from Redis is ever parsed as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const LIVE_EVERY = 1000; // ms between reads of the live figures and the last hour's chart
  const LONG_EVERY = 20000; // ms between reads of the 24 h chart

  function seconds(value) {
    if (typeof value !== "number" || !isFinite(value)) return "-";
    if (value < 1) return (value * 1000).toPrecision(3).replace(/\.?0+$/, "") + " ms";
    if (value < 60) return value.toPrecision(3).replace(/\.?0+$/, "") + " s";
    if (value < 3600) return Math.floor(value / 60) + " min " + Math.floor(value % 60) + " s";
    return Math.floor(value / 3600) + " h " + Math.floor((value % 3600) / 60) + " min";
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  // -- the queues table ------------------------------------------------------------------------

  function updateQueues(data) {
    const table = document.getElementById("queues");
    if (!table) return;
    const shown = Array.from(table.querySelectorAll("tr[data-queue]")).map((r) => r.dataset.queue);
    const names = data.queues.map((q) => q.name);
    if (shown.join("\n") !== names.join("\n") && !document.activeElement.closest("form")) {
      window.location.reload(); // a queue came or went: the server renders the new rows
      return;
    }
    for (const q of data.queues) {
      const row = Array.from(table.querySelectorAll("tr[data-queue]")).find(
        (r) => r.dataset.queue === q.name
      );
      if (!row) continue;
      for (const cell of row.querySelectorAll("td[data-field]")) {
        const field = cell.dataset.field;
        if (field === "notes") continue;
        const text = field === "oldest_waiting_age" ? seconds(q[field]) : String(q[field]);
        const target = cell.querySelector("a") || cell;
        if (target.textContent !== text) target.textContent = text;
      }
    }
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = "Live: updated " + new Date(data.time * 1000).toLocaleTimeString() + ".";
  }

  // -- charts ----------------------------------------------------------------------------------

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function draw(svg, data) {
    const series = svg.dataset.series.split(",");
    const isTime = series[0] === "p50";
    const width = Math.max(svg.clientWidth || 400, 200);
    const height = 160, left = 44, right = 8, top = 8, bottom = 18;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const points = data.points;
    let max = 0, nonZero = 0, total = 0;
    for (const p of points) {
      let any = false;
      for (const s of series) {
        const v = p[s];
        if (typeof v === "number" && v > 0) { max = Math.max(max, v); any = true; }
      }
      if (any) nonZero += 1;
      total += typeof p[series[0]] === "number" && !isTime ? p[series[0]] : 0;
    }
    svg.dataset.points = String(nonZero);
    svg.dataset.total = String(total);
    max = max > 0 ? max * 1.1 : 1;
    const n = Math.max(points.length - 1, 1);
    const x = (i) => left + ((width - left - right) * i) / n;
    const y = (v) => top + (height - top - bottom) * (1 - v / max);
    el("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis" }, svg);
    el("line", { x1: left, y1: top, x2: left, y2: y(0), class: "axis" }, svg);
    const label = (text, attrs) => { el("text", attrs, svg).textContent = text; };
    label(isTime ? seconds(max / 1.1) : String(Math.round(max / 1.1)), { x: left - 4, y: top + 8, "text-anchor": "end" });
    label(isTime ? "" : "0", { x: left - 4, y: y(0), "text-anchor": "end" });
    if (points.length) {
      label(clock(points[0].t), { x: left, y: height - 4 });
      label(clock(points[points.length - 1].t), { x: width - right, y: height - 4, "text-anchor": "end" });
    }
    for (const s of series) {
      let path = "";
      points.forEach((p, i) => {
        const v = p[s];
        if (typeof v !== "number") { path += " "; return; }
        path += (path.endsWith(" ") || path === "" ? "M" : "L") + x(i).toFixed(1) + "," + y(v).toFixed(1);
      });
      const d = path.trim().split(" ").filter(Boolean).join(" ");
      if (d) el("path", { d: d, class: s }, svg);
      points.forEach((p, i) => {
        const v = p[s];
        if (typeof v === "number" && v > 0) {
          const dot = el("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.8, class: s }, svg);
          el("title", {}, dot).textContent = clock(p.t) + "  " + s + ": " + (isTime ? seconds(v) : v);
        }
      });
    }
    const caption = svg.parentNode.querySelector("[data-total]");
    if (caption && !isTime) caption.textContent = "(" + total + " in the " + (data.span === "1h" ? "last hour" : "last 24 h") + ")";
    const step = svg.parentNode.querySelector(".step");
    if (step) step.textContent = data.step >= 900 ? "15 minutes" : "minute";
  }

  const chartState = { queue: "", span: "1h", last: 0 };

  async function refreshCharts(force) {
    const now = Date.now();
    const every = chartState.span === "1h" ? LIVE_EVERY : LONG_EVERY;
    if (!force && now - chartState.last < every) return;
    chartState.last = now;
    const query = "?span=" + encodeURIComponent(chartState.span) + "&queue=" + encodeURIComponent(chartState.queue);
    const data = await getJSON("/api/history" + query);
    for (const svg of document.querySelectorAll("svg.chart")) draw(svg, data);
  }

  function setUpCharts() {
    const select = document.getElementById("chart-queue");
    if (select) select.addEventListener("change", () => { chartState.queue = select.value; refreshCharts(true); });
    for (const button of document.querySelectorAll("button.span")) {
      button.addEventListener("click", () => {
        for (const b of document.querySelectorAll("button.span")) b.classList.remove("active");
        button.classList.add("active");
        chartState.span = button.dataset.span;
        refreshCharts(true);
      });
    }
  }

  async function tick() {
    try {
      updateQueues(await getJSON("/api/overview"));
      await refreshCharts(false);
    } catch (err) {
      const updated = document.getElementById("updated");
      if (updated) updated.textContent = "Cannot update: " + err.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page !== "overview") return;
    setUpCharts();
    tick().then(() => refreshCharts(true));
    setInterval(tick, LIVE_EVERY);
  });
})();
