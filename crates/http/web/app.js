// Console of the call-taker and supervision room. Plain JavaScript: the platform serves it from
// its binary, with no build step and nothing fetched from outside (CTA networks are closed).
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let snapshot = null;
let selected = 0;
let outlines = null;
let socket = null;
let recentTimer = null;
// Abandoned calls of my CTA last seen: a change means the call-back list has grown.
let abandonedSeen = null;

const SOURCES = { "pidf-lo": "PIDF-LO", "aml": "AML", "trunk-default": "défaut (opérateur)", "national-default": "défaut national" };

function show(view) {
  for (const v of ["login-view", "console-view", "supervision-view"]) $(v).hidden = v !== view;
}

function capitalised(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

// A result or a refusal: said with its time at the top of the console, gone after 10 s
// (a "votre téléphone sonne" read a minute later would be false).
let sayTimer = null;
function say(text) {
  $("message").textContent = `${new Date().toLocaleTimeString("fr-FR")} — ${text}`;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => { $("message").textContent = ""; }, 10000);
}

// What a priority means to a reader: higher is answered first; 5 is an ordinary call.
function priorityWords(c) {
  if (c.suspected) return "suspect (saturation)";
  if (c.crisis_related) return "liée à l'événement en cours";
  const p = c.priority;
  return p >= 8 ? "très urgente" : p >= 6 ? "urgente" : p === 5 ? "normale" : p >= 3 ? "basse" : "très basse";
}

// A default position (the operator's or the national one) is not where the caller is: it is
// never drawn as if it were.
function located(c) {
  return c.lat != null && (c.location_source === "pidf-lo" || c.location_source === "aml");
}

function seconds(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  let data = null;
  try { data = await response.json(); } catch (_) { /* empty body */ }
  // Signed out on another screen, or expired: say so rather than act on a dead session.
  if (response.status === 401 && me && path !== "/api/login") sessionEnded();
  return { status: response.status, data };
}

// The session is over: the screen stops, says why, and asks to sign in again.
function sessionEnded() {
  me = null;
  snapshot = null;
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  if (recentTimer !== null) { clearInterval(recentTimer); recentTimer = null; }
  $("link-lost").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("clock").textContent = "";
  show("login-view");
  $("login-error").textContent =
    "Session terminée (déconnexion depuis un autre écran, ou session expirée) : reconnectez-vous.";
  $("login").focus();
}

async function start() {
  const { status, data } = await api("GET", "/api/me");
  if (status !== 200) { show("login-view"); $("login").focus(); return; }
  me = data;
  $("who").textContent = `${me.name || me.login} — ${me.cta_name}`;
  $("logout").hidden = false;
  const supervises = me.role === "chef_de_salle" || me.role === "admin";
  show(supervises ? "supervision-view" : "console-view");
  outlines = (await api("GET", "/api/territory/outlines")).data;
  connect();
  setUpCases();
  if (!supervises) {
    refreshCallbacks();
    refreshRecent();
    if (recentTimer === null) recentTimer = setInterval(refreshRecent, 5000);
  }
}

const STATES = { available: "disponible", ringing: "sonnerie", talking: "en communication", "wrap-up": "fin d'appel", paused: "en pause", offline: "déconnecté" };
const OUTCOMES = { completed: "traité", transferred: "transféré", abandoned: "abandonné", rejected: "rejeté" };

async function refreshRecent() {
  // The CTA's own calls, filtered where they are stored: a limit taken over the whole country
  // left a minute and a half of this CTA's calls on a busy day.
  const { status, data } = await api("GET", `/api/calls?since=1h&limit=200&cta=${encodeURIComponent(me.cta)}`);
  if (status !== 200) return;
  const body = $("recent").tBodies[0];
  body.replaceChildren();
  for (const c of data.filter((c) => c.outcome).slice(0, 10)) {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(c.offered_at).toLocaleTimeString("fr-FR")), cell(c.caller || "masqué"),
      cell(c.commune || c.departement), cell(c.call_taker || "—"),
      cell(OUTCOMES[c.outcome] || c.outcome), cell(c.reason || ""));
    body.append(tr);
  }
}

// Reconnection waits double from 1 s to 10 s while the platform does not answer.
let retryMs = 1000;

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`);
  socket.onopen = () => { retryMs = 1000; $("link-lost").hidden = true; };
  socket.onmessage = (event) => { snapshot = JSON.parse(event.data); render(); };
  socket.onclose = async () => {
    socket = null;
    if (!me) return;
    const since = new Date().toLocaleTimeString("fr-FR");
    if ($("link-lost").hidden) {
      $("link-lost").textContent =
        `Liaison avec la plateforme perdue depuis ${since} : file et états figés, reconnexion en cours…`;
      $("link-lost").hidden = false;
    }
    // A closed session ends here (the answer calls sessionEnded); anything else is retried.
    const { status } = await api("GET", "/api/me");
    if (status === 401 || !me) return;
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

function queue() {
  if (!snapshot) return [];
  return snapshot.calls
    .filter((c) => c.status === "file")
    .sort((a, b) => b.priority - a.priority || a.queued_at - b.queued_at);
}

function myCall() {
  if (!snapshot) return null;
  return snapshot.calls.find((c) => c.call_taker === me.login && c.status !== "file") || null;
}

function render() {
  if (!me || !snapshot) return;
  $("clock").textContent = new Date(snapshot.at).toLocaleTimeString("fr-FR");
  if (me.role === "ota") renderConsole(); else renderSupervision();
}

function cell(text) { const td = document.createElement("td"); td.textContent = text ?? ""; return td; }

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

// Queue rows by call, kept and updated in place: a redraw that replaced them on every snapshot
// dropped a call-taker's click that landed during it.
const queueRows = new Map();

function queueRow(call) {
  let tr = queueRows.get(call);
  if (tr) return tr;
  tr = document.createElement("tr");
  tr.dataset.call = call;
  tr.tabIndex = -1;
  for (let k = 0; k < 7; k++) tr.append(cell(""));
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.textContent = "Prendre";
  button.className = "pick";
  button.onclick = () => pick(call);
  td.append(button);
  tr.append(td);
  tr.onclick = () => {
    const i = queue().findIndex((c) => c.call === call);
    if (i >= 0) { selected = i; render(); }
  };
  queueRows.set(call, tr);
  return tr;
}

// The other call-takers of the CTA and what they do, one row each, updated in place.
const colleagueRows = new Map();
function renderColleagues() {
  const body = $("colleagues").tBodies[0];
  const others = snapshot.agents.filter((a) => a.cta === me.cta && a.login !== me.login)
    .sort((a, b) => a.login.localeCompare(b.login));
  const shown = new Set(others.map((a) => a.login));
  for (const [login, tr] of colleagueRows) {
    if (!shown.has(login)) { tr.remove(); colleagueRows.delete(login); }
  }
  others.forEach((a, i) => {
    let tr = colleagueRows.get(a.login);
    if (!tr) {
      tr = document.createElement("tr");
      tr.append(cell(""), cell(""), cell(""));
      colleagueRows.set(a.login, tr);
    }
    const call = a.call ? snapshot.calls.find((c) => c.call === a.call) : null;
    [a.login, a.status, call ? `${call.caller || "masqué"} — ${call.commune || call.departement}` : ""]
      .forEach((text, k) => setText(tr.cells[k], text));
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
}

function renderConsole() {
  const agent = snapshot.agents.find((a) => a.login === me.login);
  $("my-status").textContent = agent ? agent.status : "déconnecté";
  renderColleagues();
  const mine = snapshot.ctas.find((c) => c.id === me.cta);
  if (mine && mine.abandoned !== abandonedSeen) {
    // The store records the call-back just after the room's figures move.
    if (abandonedSeen !== null) setTimeout(() => { refreshCallbacks(); refreshRecent(); }, 500);
    abandonedSeen = mine.abandoned;
  }
  const rows = queue();
  if (selected >= rows.length) selected = Math.max(0, rows.length - 1);
  const body = $("queue").tBodies[0];
  const listed = new Set(rows.map((c) => c.call));
  for (const [call, tr] of queueRows) if (!listed.has(call)) { tr.remove(); queueRows.delete(call); }
  rows.forEach((c, i) => {
    const tr = queueRow(c.call);
    tr.classList.toggle("selected", i === selected);
    tr.classList.toggle("crisis", !!c.crisis_related);
    tr.classList.toggle("suspect", !!c.suspected);
    const wait = snapshot.at - c.queued_at;
    tr.classList.toggle("long", wait > 30000);
    [
      seconds(wait),
      `${c.medium === "text" ? "écrit · " : ""}${c.caller ? `${c.caller}${callerHistory(c)}` : "masqué"}`,
      c.commune || "—",
      c.departement,
      located(c) ? `${SOURCES[c.location_source] || c.location_source}${c.accuracy_m ? ` ±${Math.round(c.accuracy_m)} m` : ""}`
        : c.location_source === "trunk-default" ? "approximative (opérateur)" : "position inconnue",
      priorityWords(c),
      c.home !== me.cta ? `entraide : ${c.home_name}` : (c.cta !== me.cta ? `file ${c.cta}` : ""),
    ].forEach((text, k) => setText(tr.cells[k], text));
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  $("queue-count").textContent = rows.length ? `(${rows.length})` : "";
  $("queue-empty").hidden = rows.length > 0;
  const current = myCall();
  bindNote(current);
  $("current-none").hidden = !!current;
  $("current-call").hidden = !current;
  if (current) {
    $("cur-caller").textContent = current.caller || "numéro masqué";
    setText($("cur-history"), current.caller ? callerHistory(current).replace(/^ · /, "Ce numéro : ") : "");
    $("cur-commune").textContent = current.commune || "commune inconnue";
    $("cur-dep").textContent = current.departement;
    $("cur-loc").textContent = located(current)
      ? `${current.lat.toFixed(5)}, ${current.lon.toFixed(5)} (${SOURCES[current.location_source]}${current.accuracy_m ? ` ±${Math.round(current.accuracy_m)} m` : ""})`
      : current.location_source === "trunk-default"
        ? "Position approximative (défaut de l'opérateur) : confirmez l'adresse avec l'appelant."
        : "Position inconnue : demandez l'adresse à l'appelant.";
    $("cur-loc").classList.toggle("unknown", !located(current));
    $("cur-duration").textContent = current.status === "sonnerie"
      ? "votre téléphone sonne"
      : current.answered_at
        ? `en conversation depuis ${seconds(snapshot.at - current.answered_at)} (attente ${seconds(current.answered_at - current.queued_at)})`
        : `en attente depuis ${seconds(snapshot.at - current.queued_at)}`;
    // A call lent by another CTA: the call-taker must know whose caller they hold.
    $("cur-home").hidden = current.home === me.cta;
    $("cur-home-name").textContent = current.home_name;
    $("cur-summary").hidden = !current.summary;
    $("cur-summary-text").textContent = current.summary || "";
    drawDepartement($("cur-map"), current);
  } else {
    $("cur-map").replaceChildren();
  }
  renderChat(current);
  renderCases(current);
}

// --- Cases handed to the SAMU and the police through the Hub Santé -------------------------

// What a case's state says to the call-taker; one still on disk says why it waits.
function caseWords(c) {
  const hubDown = snapshot.hub && !snapshot.hub.connected;
  switch (c.state) {
    case "acked": return `reçu par ${c.partner}`;
    case "refused": return `refusé : ${c.reason || "sans motif"}`;
    case "overdue": return `transmis, sans accusé de réception de ${c.partner}`;
    case "expired": return `expiré sans accusé de réception : prévenez ${c.partner} par téléphone`;
    default: return hubDown
      ? `en attente : hub injoignable depuis ${new Date(snapshot.hub.since).toLocaleTimeString("fr-FR")}, envoi dès son retour`
      : `transmis, en attente de l'accusé de réception de ${c.partner}`;
  }
}

// The choices the configuration gives (natures of fact, partners on the hub), once.
function setUpCases() {
  const cases = me && me.cases;
  $("case-box").hidden = !cases;
  $("cases-section").hidden = !cases || me.role !== "ota";
  if (!cases) return;
  $("qualification").replaceChildren(...cases.qualifications.map((q) => {
    const option = document.createElement("option");
    option.value = q.code;
    option.textContent = `${q.label} (${q.code})`;
    return option;
  }));
  for (const to of ["15", "17"]) $(`case${to}`).hidden = !cases.to.includes(to);
}

// Cases of this call already handed over, by partner: a change of the nature of fact or of
// the note is sent to them as an update.
function casesOf(call) {
  return snapshot && snapshot.cases ? snapshot.cases.filter((c) => c.call === call) : [];
}

async function sendCase(to) {
  const current = myCall();
  if (!current || !me.cases) return;
  const { status, data } = await api("POST", `/api/console/calls/${current.call}/case`,
    { to, qualification: $("qualification").value, note: noteOf(current) });
  say(status === 202 ? `Dossier ${data.kind === "Update" ? "mis à jour" : "transmis"} au ${to}.` : `Dossier non transmis : ${(data && data.error) || status}`);
  if (status === 202) $("summary").dataset.sent = noteOf(current);
}

// After a first send, what the call-taker changes goes to the same partners.
function updateCases() {
  const current = myCall();
  if (!current) return;
  const partners = new Set(casesOf(current.call).map((c) => c.to));
  for (const to of partners) sendCase(to);
}

// The call's own cases with their state, and the CTA's recent ones, updated in place.
const caseRows = new Map();
function renderCases(current) {
  if (!me.cases) return;
  const mine = current ? casesOf(current.call) : [];
  const last = new Map();
  for (const c of mine) last.set(c.to, c);
  setText($("cur-cases"), [...last.values()].map((c) => `Dossier au ${c.to} : ${caseWords(c)}`).join(" · "));
  const hub = snapshot.hub;
  setText($("hub-state"), hub && !hub.connected
    ? `Hub Santé injoignable depuis ${new Date(hub.since).toLocaleTimeString("fr-FR")} : les dossiers attendent sur disque et partiront à son retour.`
    : "");
  const body = $("cases").tBodies[0];
  const rows = (snapshot.cases || []).filter((c) => c.cta === me.cta).slice(-10).reverse();
  const shown = new Set(rows.map((c) => c.id));
  for (const [id, tr] of caseRows) if (!shown.has(id)) { tr.remove(); caseRows.delete(id); }
  rows.forEach((c, i) => {
    let tr = caseRows.get(c.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.append(cell(""), cell(""), cell(""), cell(""));
      caseRows.set(c.id, tr);
    }
    tr.dataset.state = c.state;
    [new Date(c.sent_at).toLocaleTimeString("fr-FR"), String(c.call), `${c.to}${c.kind === "Update" ? " (mise à jour)" : ""}`, caseWords(c)]
      .forEach((text, k) => setText(tr.cells[k], text));
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  const received = $("received").tBodies[0];
  const key = String((snapshot.received || []).length) + ((snapshot.received || []).slice(-1)[0] || {}).at;
  if (received.dataset.key !== key) {
    received.dataset.key = key;
    received.replaceChildren(...(snapshot.received || []).slice(-10).reverse().map((r) => {
      const tr = document.createElement("tr");
      tr.append(cell(new Date(r.at).toLocaleTimeString("fr-FR")), cell(r.from), cell(r.what), cell(r.place || "—"));
      return tr;
    }));
  }
}

// The phrases a call-taker sends with one key to a caller who writes: the first questions.
const PHRASES = { "1": "Où êtes-vous ?", "2": "Quelle est l'urgence ?", "3": "Êtes-vous en sécurité ?" };
const WHO = { caller: "Appelant", call_taker: "Vous", platform: "Plateforme" };

// A text conversation in hand shows as a chat: its lines as they come, and the box to answer.
function renderChat(current) {
  const chat = $("chat");
  const text = !!current && current.medium === "text" && current.status !== "sonnerie";
  chat.hidden = !text;
  const list = $("chat-lines");
  if (!text) { list.replaceChildren(); list.dataset.key = ""; return; }
  const lines = current.lines || [];
  const last = lines[lines.length - 1];
  // Redrawn only when a line came: a redraw would move the reader's scroll.
  const key = `${current.call}:${lines.length}:${last ? last.at : 0}`;
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...lines.map((l) => {
    const li = document.createElement("li");
    li.className = l.from;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = `${new Date(l.at).toLocaleTimeString("fr-FR")} ${l.from === "call_taker" && l.login !== me.login ? l.login : WHO[l.from]} : `;
    li.append(who, document.createTextNode(l.text));
    return li;
  }));
  list.scrollTop = list.scrollHeight;
}

async function writeToCaller(text) {
  const current = myCall();
  if (!current || current.medium !== "text" || !text.trim()) return;
  const { status, data } = await api("POST", `/api/console/calls/${current.call}/text`, { text });
  if (status === 202) { $("chat-text").value = ""; }
  else say((data && data.error) || `message non envoyé (${status})`);
}

// The summary box holds the note of the call in hand and nothing else: it is emptied when the
// call in hand changes, so that a hand-back or a transfer never carries words written about
// another caller (a call-taker holds one call at a time: the previous note is of no more use).
function bindNote(current) {
  const box = $("summary");
  const call = current ? String(current.call) : "";
  if (box.dataset.call === call) return;
  box.value = "";
  box.dataset.call = call;
  // The nature of fact is the call's too: back to the default for the next caller.
  box.dataset.sent = "";
  if ($("qualification").options.length) $("qualification").selectedIndex = 0;
}

/// The note written for this call, and only for it.
function noteOf(current) {
  const box = $("summary");
  return box.dataset.call === String(current.call) ? box.value : "";
}

function forgetNote(current) {
  const box = $("summary");
  if (box.dataset.call === String(current.call)) box.value = "";
}

function project(rings, width, height) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const ring of rings) for (const [x, y] of ring) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  // Longitude shrinks with latitude: scale it so the shapes keep their look.
  const k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
  const scale = Math.min(width / ((maxX - minX) * k || 1), height / ((maxY - minY) || 1)) * 0.95;
  return ([x, y]) => [(x - minX) * k * scale + 5, (maxY - y) * scale + 5];
}

function path(rings, to) {
  return rings.map((r) => "M" + r.map((p) => to(p).map((v) => v.toFixed(1)).join(",")).join("L") + "Z").join("");
}

const SVG = "http://www.w3.org/2000/svg";

function drawDepartement(svg, call) {
  const shape = outlines && outlines[call.departement];
  svg.replaceChildren();
  if (!shape) return;
  const to = project(shape.rings, 390, 390);
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", path(shape.rings, to));
  p.setAttribute("class", "dep");
  svg.append(p);
  if (located(call)) {
    const [x, y] = to([call.lon, call.lat]);
    if (call.accuracy_m) {
      // The circle of uncertainty at the map's scale: a metre of latitude is 1/111 320 degree.
      const [, north] = to([call.lon, call.lat + call.accuracy_m / 111320]);
      const ring = document.createElementNS(SVG, "circle");
      ring.setAttribute("cx", x); ring.setAttribute("cy", y);
      ring.setAttribute("r", Math.max(Math.abs(y - north), 8));
      ring.setAttribute("class", "accuracy");
      ring.setAttribute("id", "accuracy-circle");
      svg.append(ring);
    }
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", 6);
    dot.setAttribute("fill", "#a00");
    dot.setAttribute("id", "caller-dot");
    svg.append(dot);
  }
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", 8); label.setAttribute("y", 395);
  label.textContent = `${shape.name} (${call.departement})`;
  svg.append(label);
}

const ctaRows = new Map();
const LOADS = ["calme", "appels en attente", "attente > 30 s", "attente > 2 min"];

// The cases handed to partners across the country: how many wait, and those the partner may not
// have (refused, unacknowledged, expired), by call and CTA.
function renderRoomCases() {
  const cases = snapshot.cases || [];
  const box = $("room-cases");
  box.hidden = !snapshot.hub && !cases.length;
  if (box.hidden) return;
  const count = (state) => cases.filter((c) => c.state === state).length;
  const troubled = cases.filter((c) => c.state === "refused" || c.state === "overdue" || c.state === "expired")
    .slice(-5).map((c) => `appel ${c.call} (${c.cta}) au ${c.to} : ${caseWords(c)}`);
  const hub = snapshot.hub && !snapshot.hub.connected
    ? `Hub Santé injoignable depuis ${new Date(snapshot.hub.since).toLocaleTimeString("fr-FR")}. ` : "";
  setText(box, `${hub}Dossiers partenaires : ${count("acked")} reçus, ${count("queued")} en attente, ` +
    `${count("overdue")} sans accusé, ${count("refused")} refusés, ${count("expired")} expirés` +
    (troubled.length ? ` — ${troubled.join(" ; ")}` : ""));
}

function renderSupervision() {
  const inCrisis = snapshot.zones.filter((z) => z.crisis)
    .map((z) => `${z.departement}${outlines && outlines[z.departement] ? ` ${outlines[z.departement].name}` : ""}`);
  setText($("crisis-list"), inCrisis.length ? inCrisis.join(", ") : "aucun département");
  renderRoomCases();
  const svg = $("france");
  if (outlines && !svg.dataset.drawn) {
    // Metropolitan France only on the map; overseas départements are in the table.
    const metro = Object.entries(outlines).filter(([code]) => code.length <= 2);
    const to = project(metro.flatMap(([, s]) => s.rings), 590, 590);
    for (const [code, shape] of metro) {
      const p = document.createElementNS(SVG, "path");
      p.setAttribute("d", path(shape.rings, to));
      p.setAttribute("class", "dep");
      p.dataset.dep = code;
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${shape.name} (${code})`;
      p.append(title);
      svg.append(p);
    }
    svg.dataset.drawn = "1";
  }
  for (const zone of snapshot.zones) {
    const p = svg.querySelector(`[data-dep="${zone.departement}"]`);
    if (!p) continue;
    const wait = zone.oldest_queued_at ? snapshot.at - zone.oldest_queued_at : 0;
    const level = zone.waiting === 0 ? 0 : wait > 120000 ? 3 : wait > 30000 ? 2 : 1;
    p.setAttribute("class", `dep l${level}${zone.crisis ? " crisis" : ""}`);
    p.querySelector("title").textContent = `${p.dataset.dep} : ${zone.waiting} en attente${zone.waiting ? `, ${seconds(wait)}` : ""}${zone.crisis ? " — MODE CRISE" : ""}`;
  }
  // One row per CTA, updated in place: what a supervisor reads does not move four times a
  // second. The load is said in words beside its colour.
  const body = $("ctas").tBodies[0];
  snapshot.ctas.forEach((c, i) => {
    let tr = ctaRows.get(c.id);
    if (!tr) {
      tr = document.createElement("tr");
      for (let k = 0; k < 17; k++) tr.append(cell(""));
      ctaRows.set(c.id, tr);
    }
    const wait = c.oldest_queued_at ? snapshot.at - c.oldest_queued_at : 0;
    const level = c.waiting === 0 ? 0 : wait > 120000 ? 3 : wait > 30000 ? 2 : 1;
    tr.className = `load l${level}`;
    const share = c.answered_last_hour ? `${Math.round(100 * c.answered_15s_last_hour / c.answered_last_hour)} % de ${c.answered_last_hour}` : "—";
    [
      c.name, LOADS[level], String(c.waiting),
      c.oldest_queued_at ? seconds(wait) : "—",
      String(c.available), String(c.busy), String(c.paused),
      share, String(c.abandoned), String(c.overflow_in), String(c.overflow_out),
      // NENA-STA-020 counts the share over every call offered, abandoned ones included.
      c.offered_last_hour ? `${Math.round(100 * c.offered_answered_15s_last_hour / c.offered_last_hour)} % de ${c.offered_last_hour}` : "—",
      c.offered_last_hour ? `${Math.round(100 * c.offered_answered_60s_last_hour / c.offered_last_hour)} %` : "—",
      String(c.reserve), String(c.lendable), String(c.lent), String(c.lendable_idle_s),
    ].forEach((text, k) => setText(tr.cells[k], text));
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  const journal = $("journal");
  const last = snapshot.journal[snapshot.journal.length - 1];
  const seen = `${snapshot.journal.length}:${last ? last.at : 0}`;
  if (journal.dataset.seen === seen) return;
  journal.dataset.seen = seen;
  journal.replaceChildren(...snapshot.journal.slice().reverse().map((j) => {
    const li = document.createElement("li");
    li.textContent = `${new Date(j.at).toLocaleTimeString("fr-FR")} — ${j.by} : ${j.what}`;
    return li;
  }));
}

async function pick(call) {
  const written = snapshot && snapshot.calls.some((c) => c.call === call && c.medium === "text");
  const { status, data } = await api("POST", `/api/console/calls/${call}/pick`);
  if (status === 200) say(written ? `Appel ${call} pris : conversation écrite, répondez ici (T).` : `Appel ${call} pris : votre téléphone sonne.`);
  else say(`Appel ${call} : ${data && data.error ? data.error : "refusé"}.`);
}

async function setState(state) {
  const { status, data } = await api("POST", "/api/me/state", { state });
  say(status === 200 ? `État : ${STATES[data.status] || data.status}.` : `Refusé : ${data && data.error}`);
}

async function hangUp() {
  const current = myCall();
  if (!current) return;
  const { status, data } = await api("POST", `/api/console/calls/${current.call}/hangup`);
  say(status === 204 ? "Appel terminé." : `Refusé : ${data && data.error}`);
  refreshCallbacks();
  setTimeout(refreshRecent, 500);
}

async function transfer(to) {
  const current = myCall();
  if (!current) return;
  say(`Transfert au ${to} en cours…`);
  const qualification = me.cases ? $("qualification").value : undefined;
  const { status, data } = await api("POST", `/api/console/calls/${current.call}/transfer`, { to, summary: noteOf(current), qualification });
  say(status === 200 ? `Appel transféré : ${data.partner}.` : `Transfert refusé : ${data && data.error}`);
  if (status === 200) forgetNote(current);
}

// Call-back rows by call, updated in place for the same reason as the queue's.
const callbackRows = new Map();

async function handBack() {
  const current = myCall();
  if (!current || current.home === me.cta) return;
  const { status, data } = await api("POST", `/api/console/calls/${current.call}/handback`, { summary: noteOf(current) });
  say(status === 200 ? `Appel rendu au CTA d'origine (${data.home}).` : `Refusé : ${data && data.error}`);
  if (status === 200) forgetNote(current);
}

// The numbers on the call-back list, with when they called: a caller who calls again is
// known at once, in the queue and on the call in hand.
const toCallBack = new Map();

// What the console knows of this caller's other calls: on the call-back list, or in the
// queue twice.
function callerHistory(c) {
  const parts = [];
  const back = toCallBack.get(c.caller);
  if (back && back.call !== c.call) {
    parts.push(`à rappeler (appel ${back.call} de ${new Date(back.created_at).toLocaleTimeString("fr-FR")})`);
  }
  const queued = snapshot.calls.filter((o) => o.caller === c.caller && o.call !== c.call).length;
  if (queued) parts.push(`${queued + 1} appels en cours de ce numéro`);
  return parts.length ? ` · ${parts.join(" · ")}` : "";
}

async function refreshCallbacks() {
  const { status, data } = await api("GET", `/api/callbacks?cta=${encodeURIComponent(me.cta)}`);
  if (status !== 200) return;
  toCallBack.clear();
  for (const entry of data) if (entry.caller && !toCallBack.has(entry.caller)) toCallBack.set(entry.caller, entry);
  const body = $("callbacks").tBodies[0];
  const listed = new Set(data.map((entry) => entry.call));
  for (const [call, tr] of callbackRows) if (!listed.has(call)) { tr.remove(); callbackRows.delete(call); }
  data.forEach((entry, i) => {
    let tr = callbackRows.get(entry.call);
    if (!tr) {
      tr = document.createElement("tr");
      for (let k = 0; k < 4; k++) tr.append(cell(""));
      const td = document.createElement("td");
      td.append(document.createElement("button"));
      tr.append(td);
      callbackRows.set(entry.call, tr);
    }
    const next = entry.state === "taken" ? "done" : "taken";
    [String(entry.call), entry.caller || "masqué", new Date(entry.created_at).toLocaleTimeString("fr-FR"),
      entry.state === "taken" ? `rappel en cours (${entry.taken_by})` : "à rappeler",
    ].forEach((text, k) => setText(tr.cells[k], text));
    const button = tr.cells[4].firstChild;
    setText(button, next === "taken" ? "Rappeler" : "Fait");
    button.onclick = async () => { await api("POST", `/api/console/callbacks/${entry.call}/${next}`); setTimeout(refreshCallbacks, 300); };
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
}

$("login-form").onsubmit = async (event) => {
  event.preventDefault();
  const code = $("code").value.trim();
  const { status, data } = await api("POST", "/api/login", { login: $("login").value, password: $("password").value, code: code || null });
  if (status === 200) { $("login-error").textContent = ""; $("password").value = ""; $("code").value = ""; start(); }
  else if (status === 429) $("login-error").textContent = capitalised((data && data.error) || "trop de tentatives : réessayez plus tard") + ".";
  else $("login-error").textContent = "Identifiants invalides.";
};

$("logout").onclick = async () => { await api("POST", "/api/logout"); location.reload(); };
$("available").onclick = () => setState("available");
$("pause").onclick = () => setState("paused");
$("hangup").onclick = hangUp;
$("to15").onclick = () => transfer("15");
$("to17").onclick = () => transfer("17");
$("handback").onclick = handBack;
for (const button of document.querySelectorAll(".send-case")) button.onclick = () => sendCase(button.dataset.to);
$("qualification").onchange = updateCases;
// A note changed after the case went: sent again when the call-taker leaves the box.
$("summary").addEventListener("blur", () => {
  const current = myCall();
  if (current && casesOf(current.call).length && noteOf(current) !== ($("summary").dataset.sent || "")) updateCases();
});

// The answer stays where the supervisor reads it: the journal below is redrawn with every
// picture of the room and would erase it at once.
async function setCrisis(on) {
  const dep = $("crisis-dep").value.trim().toUpperCase();
  if (!dep) return;
  const { status, data } = await api("POST", `/api/supervision/crisis/${encodeURIComponent(dep)}`, { on });
  $("crisis-result").textContent = status === 204
    ? `Mode crise ${on ? "activé" : "désactivé"} pour le ${dep}.`
    : `Refusé pour le ${dep} : ${(data && data.error) || status}.`;
}

// Turning crisis mode on changes what every caller of the département hears: said in full,
// then confirmed.
$("crisis-form").onsubmit = (event) => {
  event.preventDefault();
  const dep = $("crisis-dep").value.trim().toUpperCase();
  if (!dep) return;
  const name = outlines && outlines[dep] ? ` (${outlines[dep].name})` : "";
  $("crisis-confirm-text").textContent =
    `Activer le mode crise pour le ${dep}${name} ? Ses appelants entendront l'annonce de crise et le choix « tapez 1 ».`;
  $("crisis-confirm").hidden = false;
  $("crisis-confirm-yes").focus();
};
$("crisis-confirm-yes").onclick = () => { $("crisis-confirm").hidden = true; setCrisis(true); };
$("crisis-confirm-no").onclick = () => { $("crisis-confirm").hidden = true; $("crisis-result").textContent = "Mode crise non activé."; };
$("crisis-off").onclick = () => setCrisis(false);

$("chat-form").onsubmit = (event) => { event.preventDefault(); writeToCaller($("chat-text").value); };
$("chat-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); writeToCaller($("chat-text").value); }
  else if (event.key === "Escape") { event.preventDefault(); $("chat-text").blur(); }
});
for (const button of document.querySelectorAll(".phrase")) {
  button.onclick = () => writeToCaller(PHRASES[button.dataset.key]);
}

document.addEventListener("keydown", (event) => {
  if (!me || me.role !== "ota" || event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") return;
  const rows = queue();
  if (event.key === "ArrowDown") { selected = Math.min(rows.length - 1, selected + 1); render(); event.preventDefault(); }
  else if (event.key === "ArrowUp") { selected = Math.max(0, selected - 1); render(); event.preventDefault(); }
  else if (event.key === "Enter" && rows[selected] && event.target.tagName !== "BUTTON") { pick(rows[selected].call); event.preventDefault(); }
  else if (event.key === "f" || event.key === "F") hangUp();
  else if (event.key === "p" || event.key === "P") setState("paused");
  else if (event.key === "d" || event.key === "D") setState("available");
  else if (event.key === "r" || event.key === "R") handBack();
  else if (PHRASES[event.key] && !$("chat").hidden) { writeToCaller(PHRASES[event.key]); event.preventDefault(); }
  else if ((event.key === "t" || event.key === "T") && !$("chat").hidden) { $("chat-text").focus(); event.preventDefault(); }
  else if (event.key === "?") say("↑ ↓ choisir un appel · Entrée le prendre · F finir l'appel · P pause · D disponible · R rendre au CTA d'origine · conversation écrite : T écrire, 1 2 3 phrases toutes prêtes");
});

start();
