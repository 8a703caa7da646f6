"""The review page: one HTML file, its script and style inline (no build step, nothing
fetched from elsewhere), rendered by Jinja2 with autoescaping. Everything it shows of the run
comes from the JSON API and is put into the page as text, never as markup."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }
  header { display: flex; gap: 1em; align-items: center; padding: .5em 1em; background: #263238;
           color: #fff; }
  header h1 { font-size: 1.1em; margin: 0; }
  header .grow { flex: 1; }
  header input { width: 8em; }
  #layout { display: grid; grid-template-columns: 15em minmax(20em, 1fr) 2fr; height: calc(100vh - 2.6em); }
  #filters { padding: .5em 1em; background: #eceff1; overflow: auto; }
  #filters label { display: block; margin: .5em 0 .1em; font-weight: 600; }
  #filters select, #filters input { width: 100%; box-sizing: border-box; }
  #gridbox { overflow: auto; padding: .5em; }
  #grid { display: flex; flex-wrap: wrap; gap: 4px; }
  .cell { width: 104px; border: 3px solid transparent; cursor: pointer; font-size: 11px;
          text-align: center; background: #fafafa; padding-bottom: 6px; }
  .cell img { width: 100px; height: 80px; object-fit: contain; background: #ddd; display: block; }
  .cell.current { border-color: #1e88e5; }
  .cell.keep { box-shadow: inset 0 -4px #43a047; } .cell.reject { box-shadow: inset 0 -4px #e53935; }
  .cell .done { color: #1e88e5; font-weight: 700; }
  .cell .bad { color: #fff; background: #e53935; }
  #pager { margin: .5em 0; display: flex; gap: .5em; align-items: center; }
  #viewer { padding: .5em 1em; overflow: auto; border-left: 1px solid #ccc; }
  #big { width: 100%; max-height: 62vh; object-fit: contain; display: block; background: #ddd; }
  #warning { background: #ffebee; color: #b71c1c; padding: .4em; display: none; font-weight: 600; }
  #tabs button.on { background: #1e88e5; color: #fff; }
  table.figures td { padding: 1px 8px 1px 0; vertical-align: top; }
  #status { min-height: 1.3em; color: #1b5e20; }
  #status.error { color: #b71c1c; }
  #countbox, #notebox { display: none; margin: .3em 0; }
  #keys { font-size: 12px; color: #555; }
  kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 3px; background: #fff; }
</style>
</head>
<body>
<header>
  <h1>metasift review</h1><span id="results">{{ results }}</span>
  <span class="grow"></span>
  <span id="progress"></span>
  <label>reviewer <input id="reviewer" value="{{ reviewer }}"></label>
  <button id="export" title="x">Export</button>
</header>
<div id="layout">
  <div id="filters">
    <label for="f-decision">decision</label>
    <select id="f-decision"><option value="">all</option></select>
    <label for="f-reason">reason</label>
    <select id="f-reason"><option value="">all</option></select>
    <label for="f-agreement">agreement</label>
    <select id="f-agreement"><option value="">all</option></select>
    <label for="f-status">review</label>
    <select id="f-status"><option value="">all</option></select>
    <label>count from / to</label>
    <input id="f-min" type="number" min="0"> <input id="f-max" type="number" min="0">
    <label for="f-sort">sort</label>
    <select id="f-sort"></select>
    <div id="keys">
      <p><kbd>j</kbd>/<kbd>&rarr;</kbd> next, <kbd>k</kbd>/<kbd>&larr;</kbd> previous</p>
      <p><kbd>y</kbd> keep; reject: <kbd>1</kbd> mixed, <kbd>2</kbd> debris,
         <kbd>3</kbd> too_few, <kbd>4</kbd> other</p>
      <p><kbd>c</kbd> correct the count, <kbd>n</kbd> note, <kbd>u</kbd> undo</p>
      <p><kbd>v</kbd> picture, <kbd>o</kbd> overlay, <kbd>m</kbd> heat map,
         <kbd>x</kbd> export</p>
    </div>
  </div>
  <div id="gridbox">
    <div id="pager"><button id="prevpage">&lsaquo;</button><span id="range"></span>
      <button id="nextpage">&rsaquo;</button></div>
    <div id="grid"></div>
  </div>
  <div id="viewer">
    <div id="status"></div>
    <div id="warning"></div>
    <div id="tabs">
      <button data-kind="large" class="on">picture (v)</button>
      <button data-kind="overlay">overlay (o)</button>
      <button data-kind="heat">heat map (m)</button>
      <span id="name"></span>
    </div>
    <img id="big" alt="">
    <div id="countbox">count <input id="count" type="number" min="0" max="1000">
      <small>Enter saves, Esc cancels</small></div>
    <div id="notebox">note <input id="note" size="60" maxlength="2000">
      <small>Enter saves, Esc cancels</small></div>
    <table class="figures"><tbody id="figures"></tbody></table>
  </div>
</div>
<script>
"use strict";
const PAGE = {{ page_size }};
const REASON_KEYS = {"1": "mixed", "2": "debris", "3": "too_few", "4": "other"};
const S = {offset: 0, total: 0, items: [], index: -1, detail: null, kind: "large",
           undo: [], busy: Promise.resolve()};
const $ = (id) => document.getElementById(id);

function reviewer() { return $("reviewer").value.trim(); }
function status(text, error) { $("status").textContent = text; $("status").className = error ? "error" : ""; }

async function api(url, body) {
  const init = body === undefined ? {} : {method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json"}};
  const response = await fetch(url, init);
  const data = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) throw new Error(data.error || (data.detail && JSON.stringify(data.detail)) || response.statusText);
  return data;
}

function filters() {
  const q = new URLSearchParams({offset: S.offset, limit: PAGE, sort: $("f-sort").value});
  for (const [name, id] of [["decision", "f-decision"], ["reason", "f-reason"],
      ["agreement", "f-agreement"], ["status", "f-status"], ["min_count", "f-min"], ["max_count", "f-max"]]) {
    if ($(id).value !== "") q.set(name, $(id).value);
  }
  return q;
}

function fill(select, values) {
  for (const v of values) { const o = document.createElement("option"); o.value = v[0]; o.textContent = v[1]; select.append(o); }
}

async function start() {
  const s = await api("/api/summary");
  const counted = (d) => Object.entries(d).map(([k, n]) => [k, `${k} (${n})`]);
  fill($("f-decision"), counted(s.facets.decision));
  fill($("f-reason"), counted(s.facets.reason));
  fill($("f-agreement"), counted(s.facets.agreement));
  fill($("f-status"), s.statuses.map((v) => [v, v]));
  fill($("f-sort"), s.sorts.map((v) => [v, v.replace("_", " ").replace("_", ", ")]));
  const saved = localStorage.getItem("metasift-reviewer");
  if (saved) $("reviewer").value = saved;
  showProgress(s.progress);
  for (const id of ["f-decision", "f-reason", "f-agreement", "f-status", "f-sort", "f-min", "f-max"]) {
    $(id).addEventListener("change", () => { S.offset = 0; load(0); });
  }
  $("reviewer").addEventListener("change", () => localStorage.setItem("metasift-reviewer", reviewer()));
  $("prevpage").onclick = () => page(-1);
  $("nextpage").onclick = () => page(1);
  $("export").onclick = exportAll;
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => show(b.dataset.kind);
  await load(0);
}

function showProgress(p) { $("progress").textContent = p.text; }

async function load(index) {
  const data = await api("/api/pictures?" + filters());
  S.items = data.items; S.total = data.total; S.offset = data.offset;
  showProgress(data.progress);
  const last = Math.min(S.offset + S.items.length, S.total);
  $("range").textContent = S.total ? `${(S.offset + 1).toLocaleString()}-${last.toLocaleString()} of ${S.total.toLocaleString()}` : "no pictures";
  const grid = $("grid"); grid.replaceChildren();
  S.items.forEach((item, i) => {
    const cell = document.createElement("div"); cell.className = "cell"; cell.id = "cell-" + item.id;
    const img = document.createElement("img"); img.loading = "lazy"; img.alt = item.name;
    if (item.file === "ok" && item.decision !== "error") img.src = `/pictures/${item.id}/thumb`;
    const caption = document.createElement("div");
    cell.append(img, caption); cell.onclick = () => select(i);
    grid.append(cell); paintCell(item);
  });
  if (S.items.length) await select(Math.max(0, Math.min(index, S.items.length - 1)));
  else { S.index = -1; $("figures").replaceChildren(); $("big").removeAttribute("src"); $("name").textContent = ""; }
}

function verdict(decision, reasons) {
  if (!decision) return "";
  return decision === "reject" ? `reject: ${(Array.isArray(reasons) ? reasons.join(";") : reasons) || "?"}` : decision;
}

function paintCell(item) {
  const cell = $("cell-" + item.id); if (!cell) return;
  const r = item.review, shown = r.decision || item.decision;
  cell.className = "cell " + (shown || "") + (S.items[S.index] && S.items[S.index].id === item.id ? " current" : "");
  const caption = cell.lastChild; caption.replaceChildren();
  const line = document.createElement("div"); line.textContent = item.name; caption.append(line);
  const what = document.createElement("div");
  what.textContent = `${verdict(item.decision, item.reasons) || "-"} ${item.count ?? ""}`;
  caption.append(what);
  if (r.decision || r.count !== null) {
    const done = document.createElement("div"); done.className = "done";
    done.textContent = "✓ " + verdict(r.decision, r.reasons) + (r.count !== null ? ` n=${r.count}` : "");
    caption.append(done);
  }
  if (item.file !== "ok") { const bad = document.createElement("div"); bad.className = "bad"; bad.textContent = item.file; caption.append(bad); }
}

async function select(i) {
  if (S.index >= 0 && S.items[S.index]) $("cell-" + S.items[S.index].id)?.classList.remove("current");
  S.index = i;
  const item = S.items[i];
  const cell = $("cell-" + item.id); cell.classList.add("current"); cell.scrollIntoView({block: "nearest"});
  $("countbox").style.display = $("notebox").style.display = "none";
  S.detail = await api(`/api/pictures/${item.id}`);
  if (S.items[S.index] !== item) return;  // moved on meanwhile
  render();
  const next = S.items[i + 1];  // fetched ahead, so the next picture shows at once
  if (next && next.file === "ok" && next.decision !== "error") new Image().src = `/pictures/${next.id}/large`;
}

function render() {
  const d = S.detail;
  $("name").textContent = ` ${d.path}`;
  const warning = d.file !== "ok" ? {missing: "The picture is missing on disk.",
      changed: "The picture has changed on disk since the run (size, time or SHA-256): classify it again; it cannot be reviewed here.",
      outside: "A link to a file outside the run's folders: not shown."}[d.file] || d.file
      : d.decision === "error" ? "The run could not read this picture: " + (d.row.error || "") : "";
  $("warning").textContent = warning; $("warning").style.display = warning ? "block" : "none";
  showView();
  const rows = [["machine", verdict(d.decision, d.reasons) || "-"],
                ["reviewed", verdict(d.review.decision, d.review.reasons) || "not yet"],
                ["count", d.count ?? "-"], ["reviewed count", d.review.count ?? "-"],
                ["note", d.review.note || ""]];
  for (const [k, v] of Object.entries(d.row)) if (v !== "" && v !== null) rows.push([k, String(v)]);
  if (d.history.length) rows.push(["changes", d.history.map((h) => `${h.at} ${h.reviewer}: ${h.field} ${h.old ?? "-"} → ${h.new ?? "-"}`).join("\n")]);
  const body = $("figures"); body.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
    a.textContent = k; b.textContent = v; b.style.whiteSpace = "pre-line"; tr.append(a, b); body.append(tr);
  }
}

function show(kind) { S.kind = kind; showView(); }

function showView() {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.kind === S.kind);
  const d = S.detail; if (!d) return;
  const big = $("big");
  if (d.file !== "ok" || d.decision === "error") { big.removeAttribute("src"); return; }
  big.onerror = () => fetch(big.src).then((r) => r.json()).then((e) => status(e.error || "no picture", true)).catch(() => {});
  big.src = `/pictures/${d.id}/${S.kind}`;
}

async function page(step) {
  const offset = S.offset + step * PAGE;
  if (offset < 0 || offset >= S.total) return false;
  S.offset = offset; await load(step > 0 ? 0 : PAGE - 1); return true;
}

async function move(step) {
  const i = S.index + step;
  if (i >= 0 && i < S.items.length) await select(i);
  else if (!(await page(step))) status(step > 0 ? "the last picture of this selection" : "the first picture");
}

async function change(fields, advance) {
  const item = S.items[S.index]; if (!item) return;
  const data = await api(`/api/pictures/${item.id}`, {...fields, reviewer: reviewer()});
  if (data.changes.length) S.undo.push({id: item.id, changes: data.changes});
  S.items[S.index] = data.item; paintCell(data.item); showProgress(data.progress);
  status(`${item.name}: ${Object.entries(fields).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(";") : v ?? "-"}`).join(", ")}`);
  if (advance) await move(1); else await select(S.index);
}

async function undo() {
  const last = S.undo.pop();
  if (!last) { status("nothing to undo"); return; }
  let data;
  for (const change of [...last.changes].reverse()) data = await api("/api/undo", {change, reviewer: reviewer()});
  const i = S.items.findIndex((it) => it.id === last.id);
  if (data && data.item && i >= 0) { S.items[i] = data.item; paintCell(data.item); await select(i); }
  if (data) showProgress(data.progress);
  status("undone");
}

async function exportAll() {
  const data = await api("/api/export", {});
  status("exported " + data.text);
}

function ask(box, input, value) {
  $(box).style.display = "block"; $(input).value = value ?? ""; $(input).focus(); $(input).select();
}

function run(task) {
  S.busy = S.busy.then(task).catch((err) => status(err.message, true));  // one key at a time, in order
  return S.busy;
}

document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (t.id === "count" || t.id === "note") {
    if (e.key === "Escape") { t.blur(); t.parentElement.style.display = "none"; }
    if (e.key === "Enter") {
      e.preventDefault(); const value = t.value; t.blur(); t.parentElement.style.display = "none";
      if (t.id === "count") run(() => change({count: value === "" ? null : Number(value)}, false));
      else run(() => change({note: value}, false));
    }
    return;
  }
  if (["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key;
  if (key === "j" || key === "ArrowRight") run(() => move(1));
  else if (key === "k" || key === "ArrowLeft") run(() => move(-1));
  else if (key === "y") run(() => change({decision: "keep"}, true));
  else if (REASON_KEYS[key]) run(() => change({decision: "reject", reasons: [REASON_KEYS[key]]}, true));
  else if (key === "c") { e.preventDefault(); ask("countbox", "count", S.detail && (S.detail.review.count ?? S.detail.count)); }
  else if (key === "n") { e.preventDefault(); ask("notebox", "note", S.detail && S.detail.review.note); }
  else if (key === "u") run(undo);
  else if (key === "v") show("large");
  else if (key === "o") show("overlay");
  else if (key === "m") show("heat");
  else if (key === "x") run(exportAll);
  else return;
  e.preventDefault();
});

run(start);
</script>
</body>
</html>
"""
