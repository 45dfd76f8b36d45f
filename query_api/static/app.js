// authtrail Logs page. Plain JS, no dependencies: the filters live in the URL, the API does
// the work. Every request goes through api() with the session cookie.
"use strict";

const API = "/api/v1";
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const FILTER_KEYS = ["q", "account", "user", "type", "outcome", "range", "from", "to"];
const PAGE = 50;

const $ = (id) => document.getElementById(id);
// The embeddable viewer (/embed): the Logs tab alone, its token kept in memory (a cookie
// would be a third-party one inside another site's frame).
const EMBED = window.location.pathname === "/embed";
const state = { cursor: null, loading: false, seq: 0, seen: new Set(), live: null, searchTimer: null, views: [], bearer: "" };

class ApiError extends Error {
  constructor(status, body) {
    const first = body && body.errors && body.errors[0];
    super(first ? `${first.parameter ? first.parameter + ": " : ""}${first.message}` : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-Requested-With": "authtrail" }, options.headers || {});
  if (state.bearer) headers.Authorization = `Bearer ${state.bearer}`;
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// ---- URL state --------------------------------------------------------------------------
function currentParams() {
  return new URLSearchParams(window.location.search);
}

function filterParams(extra = {}) {
  const source = currentParams();
  const out = new URLSearchParams();
  for (const key of FILTER_KEYS) for (const value of source.getAll(key)) if (value) out.append(key, value);
  out.set("tz", TZ);
  for (const [key, value] of Object.entries(extra)) if (value !== null && value !== undefined) out.set(key, value);
  return out;
}

function sortState() {
  const params = currentParams();
  return { sort: params.get("sort") || "time", order: params.get("order") || "desc" };
}

function setParams(changes, { push = true } = {}) {
  const params = currentParams();
  for (const [key, value] of Object.entries(changes)) {
    params.delete(key);
    for (const one of Array.isArray(value) ? value : [value]) if (one) params.append(key, one);
  }
  const query = params.toString();
  const url = window.location.pathname + (query ? "?" + query : "");
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  refresh();
}

// ---- formatting -------------------------------------------------------------------------
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
const exactFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

function friendlyTime(iso) {
  const when = new Date(iso);
  const now = new Date();
  const today = when.toDateString() === now.toDateString();
  return today ? `Today ${timeFmt.format(when)}` : dateFmt.format(when);
}

function exactTime(iso) {
  const when = new Date(iso);
  const ms = String(when.getMilliseconds()).padStart(3, "0");
  return `${exactFmt.format(when)} (+${ms} ms) — ${iso}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.includes("-") || key === "for" || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function icon(outcome) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", `icon ${outcome}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", outcome === "success" ? "Success" : "Failure");
  const path = document.createElementNS(SVG_NS, "path");
  if (outcome === "success") {
    path.setAttribute("d", "M8 0a8 8 0 110 16A8 8 0 018 0zm3.6 5.2L7 9.8 4.4 7.2 3.3 8.3 7 12l5.7-5.7z");
  } else {
    path.setAttribute("d", "M8 1l7.5 13.5h-15L8 1zm-.8 5v4h1.6V6H7.2zm0 5.2v1.6h1.6v-1.6H7.2z");
  }
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

// ---- rows -------------------------------------------------------------------------------
function rowFor(item) {
  const actor = el("td", {},
    el("span", { text: item.actor_display }),
    item.actor_type === "agent" ? el("span", { class: "badge", text: "AI agent", title: "AI agent" }) : null,
    item.actor_type === "service" ? el("span", { class: "badge", text: "service", title: "Service account" }) : null);
  const tr = el("tr", { "data-id": item.event_id, "data-outcome": item.outcome },
    el("td", {}, el("div", { class: "log" }, icon(item.outcome), el("span", { text: item.description }))),
    el("td", { title: exactTime(item.occurred_at), text: friendlyTime(item.occurred_at) }),
    el("td", { text: item.account_name || item.account_id || "—" }),
    actor,
    el("td", { class: "mono", text: item.ip || "—" }));
  tr.addEventListener("click", () => openDetails(item.event_id));
  return tr;
}

async function loadPage(first) {
  // A new first page supersedes whatever is in flight; "more" waits its turn.
  if (!first && state.loading) return;
  const seq = first ? ++state.seq : state.seq;
  state.loading = true;
  const table = $("logs");
  table.setAttribute("aria-busy", "true");
  const { sort, order } = sortState();
  const params = filterParams({ sort, order, limit: PAGE, cursor: first ? null : state.cursor });
  try {
    const page = await api(`${API}/logs?${params}`);
    if (seq !== state.seq) return;
    const rows = $("rows");
    if (first) { rows.replaceChildren(); state.seen.clear(); }
    for (const item of page.items) {
      if (state.seen.has(item.event_id)) continue;
      state.seen.add(item.event_id);
      rows.append(rowFor(item));
    }
    state.cursor = page.next_cursor;
    $("empty").hidden = rows.children.length > 0;
    $("load-more").hidden = !state.cursor;
    $("error").hidden = true;
    $("summary").textContent = `${rows.children.length} shown${state.cursor ? ", more below" : ""}`;
  } catch (error) {
    if (seq !== state.seq) return;
    if (error.status === 401) return showLogin();
    $("error").textContent = error.message;
    $("error").hidden = false;
  } finally {
    if (seq === state.seq) {
      state.loading = false;
      table.dataset.query = window.location.search;
      table.setAttribute("aria-busy", "false");
    }
  }
}

// Live mode: new events at the top without a reload (newest-first time order only).
async function pollLive() {
  const { sort, order } = sortState();
  if (sort !== "time" || order !== "desc") {
    $("live-status").textContent = "live needs newest-first time order";
    return;
  }
  try {
    const page = await api(`${API}/logs?${filterParams({ limit: PAGE })}`);
    const fresh = page.items.filter((item) => !state.seen.has(item.event_id));
    const rows = $("rows");
    for (const item of fresh.reverse()) {
      state.seen.add(item.event_id);
      const tr = rowFor(item);
      tr.classList.add("new");
      rows.prepend(tr);
    }
    $("empty").hidden = rows.children.length > 0;
    $("live-status").textContent = fresh.length ? `${fresh.length} new` : "up to date";
    if (fresh.length) loadTimeline();
  } catch (error) {
    $("live-status").textContent = error.message;
  }
}

function setLive(on) {
  if (state.live) { clearInterval(state.live); state.live = null; }
  $("live-status").textContent = "";
  if (on) { state.live = setInterval(pollLive, 2000); pollLive(); }
}

// ---- timeline ---------------------------------------------------------------------------
async function loadTimeline() {
  const svg = $("timeline-svg");
  try {
    const data = await api(`${API}/logs/timeline?${filterParams()}`);
    const buckets = data.buckets;
    svg.replaceChildren();
    const width = 1000, height = 90;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const max = Math.max(1, ...buckets.map((b) => b.success + b.failure));
    const w = width / Math.max(1, buckets.length);
    buckets.forEach((b, i) => {
      const hs = (b.success / max) * (height - 4);
      const hf = (b.failure / max) * (height - 4);
      const x = i * w + w * 0.1;
      for (const [cls, h, y, n] of [["success", hs, height - hs, b.success], ["failure", hf, height - hs - hf, b.failure]]) {
        if (!h) continue;
        const rect = document.createElementNS(SVG_NS, "rect");
        rect.setAttribute("x", x.toFixed(2));
        rect.setAttribute("y", y.toFixed(2));
        rect.setAttribute("width", (w * 0.8).toFixed(2));
        rect.setAttribute("height", h.toFixed(2));
        rect.setAttribute("class", cls);
        const title = document.createElementNS(SVG_NS, "title");
        title.textContent = `${dateFmt.format(new Date(b.start))}: ${n} ${cls}`;
        rect.append(title);
        svg.append(rect);
      }
    });
    const total = buckets.reduce((sum, b) => sum + b.success + b.failure, 0);
    const failures = buckets.reduce((sum, b) => sum + b.failure, 0);
    $("timeline-caption").textContent = buckets.length
      ? `${total} events, ${failures} failures · ${Math.round(data.bucket_seconds / 60)} min buckets`
      : "no events in this range";
  } catch (error) {
    $("timeline-caption").textContent = error.message;
  }
}

// ---- filters ----------------------------------------------------------------------------
async function fillFacet(name, select, param) {
  const params = filterParams({ limit: 200 });
  params.delete("q");
  params.delete(param);
  try {
    const facet = await api(`${API}/facets/${name}?${params}`);
    const current = currentParams().get(param) || "";
    const options = [el("option", { value: "", text: "All" })];
    let found = current === "";
    for (const v of facet.values) {
      let label = v.label && v.label !== v.value ? `${v.label} (${v.value})` : v.value;
      if (name === "users") label = v.value;
      options.push(el("option", { value: v.value, text: `${label} — ${v.count}` }));
      if (v.value === current) found = true;
    }
    if (!found) options.push(el("option", { value: current, text: current }));
    select.replaceChildren(...options);
    select.value = current;
  } catch (error) {
    if (error.status === 401) showLogin();
  }
}

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : "";
}

function syncControls() {
  const params = currentParams();
  $("f-q").value = params.get("q") || "";
  $("f-outcome").value = params.get("outcome") || "";
  const custom = params.get("from") || params.get("to");
  $("f-range").value = custom ? "custom" : params.get("range") || "";
  $("custom-range").hidden = !custom && $("f-range").value !== "custom";
  $("f-from").value = toLocalInput(params.get("from"));
  $("f-to").value = toLocalInput(params.get("to"));
  const { sort, order } = sortState();
  for (const button of document.querySelectorAll("button.sort")) {
    button.setAttribute("aria-sort", button.dataset.sort === sort ? (order === "desc" ? "descending" : "ascending") : "none");
  }
  const exportParams = filterParams();
  $("export-csv").href = `${API}/logs/export?${exportParams}&format=csv`;
  $("export-ndjson").href = `${API}/logs/export?${exportParams}&format=ndjson`;
}

// ---- saved views ------------------------------------------------------------------------
async function loadViews() {
  try {
    state.views = await api(`${API}/views`);
  } catch (error) {
    if (error.status === 401) showLogin();
    state.views = [];
  }
  const options = [el("option", { value: "", text: state.views.length ? "—" : "None yet" })];
  for (const view of state.views) {
    options.push(el("option", { value: view.id, text: view.shared ? `${view.name} (shared)` : view.name }));
  }
  $("f-view").replaceChildren(...options);
  $("f-view").value = "";
  $("view-delete").hidden = true;
}

// The view's filter and sort become the URL's, as if chosen one by one.
function openView(view) {
  const changes = {};
  for (const key of FILTER_KEYS) changes[key] = "";
  const f = view.filter;
  Object.assign(changes, {
    q: f.q || "", account: f.account, user: f.user, type: f.type, outcome: f.outcome || "",
    range: f.range || "", from: f.from || "", to: f.to || "",
    sort: view.sort === "time" ? "" : view.sort, order: view.order === "desc" ? "" : view.order,
  });
  setParams(changes);
}

// The page's filters as a view's (the API checks them as it checks GET /logs).
function currentView() {
  const params = currentParams();
  const { sort, order } = sortState();
  const filter = { account: params.getAll("account"), user: params.getAll("user"), type: params.getAll("type"), tz: TZ };
  for (const key of ["q", "outcome", "range", "from", "to"]) if (params.get(key)) filter[key] = params.get(key);
  return { filter, sort, order };
}

function bindViews() {
  $("f-view").addEventListener("change", () => {
    const view = state.views.find((v) => v.id === $("f-view").value);
    $("view-delete").hidden = !view;
    if (view) openView(view);
  });
  $("view-save").addEventListener("click", async () => {
    const name = $("view-name").value.trim();
    if (!name) { $("view-name").focus(); return; }
    try {
      const body = Object.assign({ name, shared: $("view-shared").checked }, currentView());
      const saved = await api(`${API}/views`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      $("view-name").value = "";
      $("save-view").open = false;
      await loadViews();
      $("f-view").value = saved.id;
      $("view-delete").hidden = false;
      $("error").hidden = true;
    } catch (error) {
      $("error").textContent = error.message;
      $("error").hidden = false;
    }
  });
  $("view-delete").addEventListener("click", async () => {
    const id = $("f-view").value;
    if (!id) return;
    try {
      await api(`${API}/views/${id}`, { method: "DELETE" });
      await loadViews();
    } catch (error) {
      $("error").textContent = error.message;
      $("error").hidden = false;
    }
  });
}

function refresh() {
  syncControls();
  state.cursor = null;
  loadPage(true);
  loadTimeline();
  fillFacet("accounts", $("f-account"), "account");
  fillFacet("users", $("f-user"), "user");
  fillFacet("types", $("f-type"), "type");
}

function bindFilters() {
  $("f-q").addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(() => setParams({ q: $("f-q").value.trim() }, { push: false }), 300);
  });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); setParams({ q: $("f-q").value.trim() }); });
  for (const [id, key] of [["f-account", "account"], ["f-user", "user"], ["f-type", "type"], ["f-outcome", "outcome"]]) {
    $(id).addEventListener("change", () => setParams({ [key]: $(id).value }));
  }
  $("f-range").addEventListener("change", () => {
    const value = $("f-range").value;
    if (value === "custom") { $("custom-range").hidden = false; return; }
    setParams({ range: value, from: "", to: "" });
  });
  for (const id of ["f-from", "f-to"]) {
    $(id).addEventListener("change", () => setParams({ range: "", from: fromLocalInput($("f-from").value), to: fromLocalInput($("f-to").value) }));
  }
  $("clear-filters").addEventListener("click", () => {
    const cleared = {};
    for (const key of FILTER_KEYS) cleared[key] = "";
    setParams(cleared);
  });
  for (const button of document.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const { sort, order } = sortState();
      const target = button.dataset.sort;
      const next = target === sort ? (order === "desc" ? "asc" : "desc") : "desc";
      setParams({ sort: target, order: next });
    });
  }
  $("load-more").addEventListener("click", () => loadPage(false));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.cursor) loadPage(false);
  }).observe($("more"));
  $("live").addEventListener("change", () => setLive($("live").checked));
  window.addEventListener("popstate", refresh);
}

// ---- details ----------------------------------------------------------------------------
function filterLink(label, changes) {
  const link = el("button", { type: "button", class: "button", text: label });
  link.addEventListener("click", () => { closeDetails(); setParams(changes); });
  return link;
}

async function openDetails(eventId) {
  const body = $("details-body");
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  $("details").hidden = false;
  try {
    const e = await api(`${API}/logs/${encodeURIComponent(eventId)}`);
    const rows = [
      ["Log", e.description], ["Outcome", e.outcome], ["Event key", e.event_key],
      ["Date & time", exactTime(e.occurred_at)], ["Received", exactTime(e.received_at)],
      ["Account", e.account_name ? `${e.account_name} (${e.account_id})` : e.account_id || "—"],
      ["Actor", e.actor_display], ["Actor type", e.actor_type], ["Actor id", e.actor_id || "—"],
      ["Actor email", e.actor_email || "—"], ["IP address", e.ip || "—"], ["Country", e.country || "—"],
      ["Browser", e.ua_browser || "—"], ["OS", e.ua_os || "—"], ["Device", e.ua_device || "—"],
      ["User agent", e.user_agent || "—"], ["Reason", e.reason || "—"], ["Event id", e.event_id],
    ];
    const dl = el("dl");
    for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: v }));
    const trace = el("dd", { class: "mono", text: e.trace_id || "—" });
    if (e.trace_id) {
      const copy = el("button", { type: "button", class: "link", text: "Copy", id: "copy-trace" });
      copy.addEventListener("click", async () => {
        try { await navigator.clipboard.writeText(e.trace_id); copy.textContent = "Copied"; }
        catch { copy.textContent = "Copy failed"; }
      });
      trace.append(" ", copy);
    }
    dl.append(el("dt", { text: "Trace id" }), trace);
    const links = el("div", { class: "links" });
    if (e.trace_id) links.append(filterLink("Logs of this trace", { q: e.trace_id }));
    if (e.ip) links.append(filterLink("Logs from this IP", { q: e.ip }));
    links.append(filterLink("Logs of this actor", { user: e.actor_email || e.actor_id || "anonymous" }));
    body.replaceChildren(dl, links,
      el("h3", { text: "Attributes" }), el("pre", { text: JSON.stringify(e.attributes, null, 2) }),
      el("h3", { text: "As received" }), el("pre", { text: typeof e.raw === "string" ? e.raw : JSON.stringify(e.raw, null, 2) }));
  } catch (error) {
    body.replaceChildren(el("p", { class: "error", text: error.message }));
  }
}

function closeDetails() { $("details").hidden = true; }

// ---- session ----------------------------------------------------------------------------
function showLogin(message) {
  setLive(false);
  if (EMBED) {  // no sign-in inside a frame: the viewer ended (expired or revoked)
    $("app").hidden = true;
    $("embed-ended").hidden = false;
    return;
  }
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function signIn(token) {
  const who = await api(`${API}/session`, {
    method: "POST", body: JSON.stringify({ token }), headers: { "Content-Type": "application/json" },
  });
  return who;
}

function showApp(who) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `${who.name} · ${who.role}${who.account ? " · " + who.account : ""}`;
  // The Stream side spans every account: an account-scoped token sees the Logs only.
  $("tab-stream").hidden = Boolean(who.account);
  $("tab-privacy").hidden = who.role !== "admin";
  const path = window.location.pathname;
  const tab = path === "/stream" && !who.account ? "stream"
    : path === "/privacy" && who.role === "admin" ? "privacy" : "logs";
  for (const name of ["logs", "stream", "privacy"]) {
    $(`${name}-tab`).hidden = name !== tab;
    $(`tab-${name}`).classList.toggle("active", name === tab);
  }
  if (tab === "stream") Stream.show(who).catch((error) => { $("stream-error").textContent = error.message; });
  else if (tab === "privacy") Privacy.show().catch((error) => { $("erasure-reply").textContent = error.message; });
  else { refresh(); loadViews(); }
}

async function startEmbedded(fragment) {
  const params = currentParams();
  state.bearer = params.get("token") || fragment.get("token") || "";
  const viewId = params.get("view");
  params.delete("token");
  params.delete("view");
  history.replaceState(null, "", "/embed" + (params.toString() ? "?" + params : ""));  // the token leaves the address bar
  document.body.classList.add("embedded");
  let who;
  try {
    who = await api(`${API}/session`);
  } catch (error) {
    return showLogin();
  }
  $("app").hidden = false;
  $("logs-tab").hidden = false;
  $("stream-tab").hidden = true;
  $("privacy-tab").hidden = true;
  const heading = document.querySelector("#app h1");
  heading.textContent = who.account || "Logs";
  try {  // the account's name, as its events carry it
    const facet = await api(`${API}/facets/accounts?limit=1&tz=${encodeURIComponent(TZ)}`);
    const named = facet.values.find((v) => v.value === who.account);
    if (named && named.label) heading.textContent = named.label;
  } catch (error) { /* the id stays */ }
  if (viewId) {
    try { return openView(await api(`${API}/views/${viewId}`)); } catch (error) { /* the plain view */ }
  }
  refresh();
}

async function start() {
  $("details-close").addEventListener("click", closeDetails);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDetails(); });
  $("sign-out").addEventListener("click", async () => {
    try { await api(`${API}/session`, { method: "DELETE" }); } finally { showLogin(); }
  });
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      showApp(await signIn($("login-token").value.trim()));
      $("login-token").value = "";
    } catch (error) {
      showLogin(error.message);
    }
  });
  bindFilters();
  bindViews();
  Stream.bind();
  Privacy.bind();
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (EMBED) return startEmbedded(fragment);
  if (window.location.pathname === "/login" && fragment.get("token")) {
    const token = fragment.get("token");
    history.replaceState(null, "", "/");  // the token leaves the address bar at once
    try { showApp(await signIn(token)); } catch (error) { showLogin(error.message); }
    return;
  }
  try {
    showApp(await api(`${API}/session`));
  } catch (error) {
    showLogin(error.status === 401 ? "" : error.message);
  }
}

document.addEventListener("DOMContentLoaded", start);
