// The live dashboard: one scope (the enterprise, a business unit or a campaign), fed by the
// insights service's server-sent events; no page reload, no network access beyond the service.
"use strict";

const params = new URLSearchParams(location.search);
const scope = params.get("businessunit")
  ? { query: "businessunit=" + encodeURIComponent(params.get("businessunit")), unit: "businessunit:" + params.get("businessunit") }
  : params.get("campaign_id")
    ? { query: "campaign_id=" + encodeURIComponent(params.get("campaign_id")), unit: "campaign:" + params.get("campaign_id") }
    : { query: "", unit: "enterprise" };

const state = { units: new Map(), ideas: new Map(), ranking: "score", trend: { t: [], votes: [], ideas: [], coverage: [] } };
const $ = (id) => document.getElementById(id);
const pct = (x) => (x === null || x === undefined ? "–" : Math.round(x * 100) + " %");
const num = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en"));

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return "< 1 s";  // an answer given before it was asked counts as immediate
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function setMeter(id, value) {
  $(id).style.width = value === null || value === undefined ? "0" : Math.round(value * 100) + "%";
}

function renderKpis() {
  const u = state.units.get(scope.unit);
  if (!u) return;
  $("kpi-ideas").textContent = num(u.ideas);
  $("kpi-participants").textContent = num(u.participants);
  $("kpi-votes").textContent = num(u.votes);
  $("kpi-response").textContent = duration(u.first_response_median_s) + " / " + duration(u.first_response_p90_s);
  $("kpi-coverage").textContent = pct(u.coverage);
  $("kpi-delivery").textContent = pct(u.delivery_rate);
  $("kpi-helpfulness").textContent = pct(u.helpfulness);
  $("kpi-cross").textContent = pct(u.cross_bu_share);
  // Asking whether a delivered idea helped: one question per idea and customer.
  const asked = u.attestation_requests || 0, answered = u.attestation_answers || 0;
  $("kpi-asked").textContent = num(asked);
  $("kpi-reminders").textContent = u.attestation_reminders ? count(u.attestation_reminders, "reminder") : "";
  $("kpi-response-rate").textContent = pct(u.response_rate);
  $("kpi-answered").textContent = asked ? num(answered) + " of " + num(asked) + " answered" : "";
  $("kpi-answer-time").textContent = duration(u.answer_time_median_s);
  $("kpi-attested").textContent = u.attested ? num(u.helped) + " of " + num(u.attested) + " said yes" : "";
  setMeter("meter-coverage", u.coverage);
  setMeter("meter-delivery", u.delivery_rate);
  setMeter("meter-helpfulness", u.helpfulness);
  setMeter("meter-cross", u.cross_bu_share);
  setMeter("meter-response-rate", u.response_rate);
}

const RANK_KEYS = {
  score: (i) => [i.score, i.wilson_lower_bound],
  wilson: (i) => [i.wilson_lower_bound, i.score],
  trending: (i) => [i.trending === null || i.trending === undefined ? -Infinity : i.trending, i.score],
  weighted: (i) => [i.weighted_score, i.score],
};
const RANK_LABEL = {
  score: (i) => (i.score > 0 ? "+" : "") + i.score,
  wilson: (i) => Math.round(i.wilson_lower_bound * 100) + " %",
  trending: (i) => (i.trending === null || i.trending === undefined ? "–" : Math.exp(i.trending - nowInTau()).toFixed(1)),
  weighted: (i) => i.weighted_score.toFixed(1),
};

function nowInTau() {
  // The trending value is ln Σ Δ·e^(t/τ); e^(trending - now/τ) is the decayed score now.
  return (Date.now() / 1000 - Date.UTC(2026, 0, 1) / 1000) / (7 * 24 * 3600);
}

function renderLeaderboard() {
  const key = RANK_KEYS[state.ranking];
  const top = [...state.ideas.values()]
    // As /ideas/top: a merged twin counts as its survivor, a withdrawn idea was taken back.
    .filter((i) => i.businessunit && !i.merged_into && i.status !== "duplicate" && i.status !== "withdrawn")
    .sort((a, b) => { const ka = key(a), kb = key(b); return kb[0] - ka[0] || kb[1] - ka[1] || (a.idea_id < b.idea_id ? -1 : 1); })
    .slice(0, 10);
  const most = Math.max(1, ...top.map((i) => i.up + i.down));
  const list = $("leaderboard");
  list.replaceChildren();
  if (!top.length) {
    list.innerHTML = '<li class="empty">No ideas yet. Run <code>make demo</code> to post some.</li>';
    return;
  }
  for (const idea of top) {
    const li = document.createElement("li");
    li.dataset.ideaId = idea.idea_id;
    li.dataset.score = idea.score;
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = idea.title || idea.idea_id;
    const meta = document.createElement("small");
    meta.textContent = idea.businessunit + " · " + count(idea.voters, "voter") + " · " + count(idea.comments, "comment");
    title.append(meta);
    if (idea.status) {
      const pill = document.createElement("span");
      pill.className = "pill " + idea.status;
      pill.textContent = idea.status.replace("_", " ");
      title.append(pill);
    }
    if (idea.follow_up_needed) {
      const pill = document.createElement("span");
      pill.className = "pill follow-up";
      pill.textContent = "follow up";
      pill.title = "Too many customers said it did not help";
      title.append(pill);
    }
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.innerHTML = '<div class="up"></div><div class="down"></div>';
    bar.children[0].style.width = (100 * idea.up) / most + "%";
    bar.children[1].style.width = (100 * idea.down) / most + "%";
    bar.title = idea.up + " up, " + idea.down + " down";
    const value = document.createElement("div");
    value.className = "num";
    value.textContent = RANK_LABEL[state.ranking](idea);
    li.append(title, value, bar);
    list.append(li);
  }
}

function renderUnits() {
  const rows = [...state.units.values()].filter((u) => u.kind === "businessunit").sort((a, b) => b.weighted_demand - a.weighted_demand);
  const box = $("units");
  box.replaceChildren();
  if (!rows.length) {
    box.innerHTML = scope.unit === "enterprise" ? '<div class="empty">No business unit has ideas yet.</div>' : '<div class="empty">Every unit side by side: see the Enterprise view.</div>';
    return;
  }
  for (const u of rows) {
    const row = document.createElement("div");
    row.className = "unit-row";
    row.dataset.unit = u.unit;
    const name = document.createElement("a");
    name.className = "name";
    name.href = "?businessunit=" + encodeURIComponent(u.name);
    name.textContent = u.title || u.name;
    const bars = document.createElement("div");
    bars.className = "triple";
    const figures = [["coverage", u.coverage, "coverage"], ["cross", u.cross_bu_share, "cross-BU"],
      ["response", u.response_rate, "answered"], ["helpfulness", u.helpfulness, "helped"]];
    bars.setAttribute("role", "img");
    bars.setAttribute("aria-label", figures.map(([, value, label]) => label + " " + pct(value)).join(", "));
    for (const [cls, value, label] of figures) {
      // The figure is written beside its bar: a leader reads it without hovering.
      const metric = document.createElement("div");
      metric.className = "metric " + cls;
      metric.title = label + " " + pct(value);
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = Math.round((value || 0) * 100) + "%";
      track.append(fill);
      const figure = document.createElement("span");
      figure.className = "figure";
      figure.textContent = pct(value);
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = label;
      metric.append(track, figure, what);
      bars.append(metric);
    }
    row.append(name, bars);
    box.append(row);
  }
}

function count(n, noun) {
  return n + " " + noun + (n === 1 ? "" : "s");
}

function renderScopes() {
  const nav = $("scopes");
  const byTitle = (a, b) => (a.title || a.name).localeCompare(b.title || b.name);
  const units = [...state.units.values()].filter((u) => u.kind === "businessunit").sort(byTitle);
  const campaigns = [...state.units.values()].filter((u) => u.kind === "campaign").sort(byTitle);
  const links = [
    ["Enterprise", ""],
    ...units.map((u) => [u.title || u.name, "businessunit=" + encodeURIComponent(u.name)]),
    ...campaigns.map((u) => [u.title || "campaign " + u.name.slice(0, 8), "campaign_id=" + encodeURIComponent(u.name)]),
  ];
  nav.replaceChildren(...links.map(([label, query]) => {
    const a = document.createElement("a");
    a.href = query ? "?" + query : location.pathname;
    a.textContent = label;
    if (query === scope.query) a.className = "on";
    return a;
  }));
}

let chart = null;
function renderTrend() {
  const t = state.trend;
  const data = [t.t, t.votes, t.ideas, t.coverage];
  if (!chart) {
    const box = $("trend");
    chart = new uPlot({
      width: Math.max(240, box.clientWidth), height: 240,
      series: [{}, { label: "votes", stroke: "#2f6fde", width: 2, value: (u, v) => num(v) },
        { label: "ideas", stroke: "#1f9d63", width: 2, value: (u, v) => num(v) },
        { label: "coverage", stroke: "#d98a04", width: 2, dash: [6, 4], scale: "%", value: (u, v) => pct(v === null ? null : v / 100) }],
      // Room between time labels so they never run together; whole numbers only on the count axis.
      axes: [
        { space: 80 },
        { label: "count", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6] },
        { side: 1, scale: "%", label: "%", grid: { show: false } },
      ],
      scales: { "%": { range: [0, 100] } },
      // Away from the cursor the legend gives the latest figures, not dashes.
      hooks: { setCursor: [(u) => { if (u.cursor.idx === null || u.cursor.idx === undefined) showLatest(u); }] },
    }, data, box);
    // The page may be laid out again (a phone turned, a headless window sized after the script
    // ran): the chart follows its box rather than keep the width it started with.
    new ResizeObserver(() => chart.setSize({ width: Math.max(240, box.clientWidth), height: 240 })).observe(box);
  } else {
    chart.setData(data);
  }
  showLatest(chart);
}

function showLatest(u) {
  if (u.data[0].length) u.setLegend({ idx: u.data[0].length - 1 });
}

const HOUR_S = 3600;
const coveragePct = (totals) => (totals.weighted_demand ? (100 * totals.covered_demand) / totals.weighted_demand : null);

function pushTrend(x, totals) {
  const t = state.trend;
  t.t.push(x); t.votes.push(totals.votes || 0); t.ideas.push(totals.ideas || 0); t.coverage.push(coveragePct(totals));
}

function repeatLastTrend(x) {
  const t = state.trend, i = t.t.length - 1;
  t.t.push(x); t.votes.push(t.votes[i]); t.ideas.push(t.ideas[i]); t.coverage.push(t.coverage[i]);
}

function loadHistory(points) {
  // The server's hourly points (each hour in which something changed): a point at each hour's
  // start and end, so an hour without changes is drawn flat, and the current hour ends now.
  const t = state.trend, now = Date.now() / 1000;
  for (const point of points) {
    const start = Date.parse(point.start) / 1000;
    if (!t.t.length || t.t[t.t.length - 1] < start) {
      const before = {};
      for (const [name, value] of Object.entries(point.totals)) before[name] = value - (point.changes[name] || 0);
      pushTrend(start, before);
    }
    pushTrend(Math.min(start + HOUR_S, now), point.totals);
  }
}

function addTrendPoint(u) {
  if (u.unit !== scope.unit) return;
  // Past hours stay as the server counted them; the point of the current hour follows the unit.
  const t = state.trend, now = Date.now() / 1000, hour = now - (now % HOUR_S);
  const last = t.t.length ? t.t[t.t.length - 1] : null;
  if (last !== null && last > hour) { t.t.pop(); t.votes.pop(); t.ideas.pop(); t.coverage.pop(); }
  else if (last !== null && last < hour) repeatLastTrend(hour);  // nothing changed since the last point
  pushTrend(now, u);
}

// A session that has expired answers 401: sign in again, then come back here.
async function signedFetch(url) {
  const answer = await fetch(url);
  if (answer.status === 401) location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
  return answer;
}

async function loadRanking() {
  const answer = await signedFetch("/ideas/top?limit=10&ranking=" + state.ranking + (scope.query ? "&" + scope.query : ""));
  if (answer.ok) for (const idea of await answer.json()) state.ideas.set(idea.idea_id, idea);
  renderLeaderboard();
}

let pending = false;
function renderAll() {
  renderKpis(); renderLeaderboard(); renderUnits(); renderScopes(); renderTrend();
}

function render() {
  // Many events can arrive at once: draw at most once per frame.
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; renderAll(); });
}

function connect() {
  const source = new EventSource("/stream" + (scope.query ? "?" + scope.query : ""));
  source.onopen = () => { $("live").textContent = "live"; $("live").classList.remove("off", "snapshot"); };
  source.onerror = () => { $("live").textContent = "reconnecting"; $("live").classList.add("off"); };
  source.addEventListener("unit", (event) => {
    const u = JSON.parse(event.data);
    state.units.set(u.unit, u);
    addTrendPoint(u);
    render();
  });
  source.addEventListener("idea", (event) => {
    const idea = JSON.parse(event.data);
    state.ideas.set(idea.idea_id, idea);
    render();
  });
}

for (const button of document.querySelectorAll("#rankings button")) {
  button.addEventListener("click", () => {
    state.ranking = button.dataset.ranking;
    for (const b of document.querySelectorAll("#rankings button")) b.classList.toggle("on", b === button);
    loadRanking();
  });
}

// The page came with its figures (rendered by the server): draw them at once, before the first
// paint, and only then follow the stream.
const initial = JSON.parse($("initial").textContent);
for (const u of initial.units) state.units.set(u.unit, u);
for (const idea of initial.ideas) state.ideas.set(idea.idea_id, idea);
loadHistory(initial.series);
const own = state.units.get(scope.unit);
if (own) addTrendPoint(own);
renderAll();
connect();
