// The round page, live: polls the rounds API (the session cookie signs the requests)
// every two seconds, updates status, progress, error and log, and appends new metric
// points to the Chart.js charts. Everything shown goes in as text, never as HTML.
(function () {
  "use strict";

  const root = document.getElementById("round-watch");
  if (!root || typeof Chart === "undefined") return;

  const POLL_MS = 2000;
  const roundId = root.dataset.roundId;
  const api = `/api/v1/rounds/${roundId}`;
  const klBudget = Number(root.dataset.klBudget);
  // Which worker metrics (phase -> names) each chart draws; see worker/training/*.py.
  // One phase per chart, so each x axis counts that phase's steps.
  const CHARTS = {
    rm: { reward_model: ["loss", "eval_loss", "accuracy", "eval_accuracy"] },
    reward: { ppo: ["reward_mean"], dpo: ["chosen_reward", "rejected_reward", "reward_margin"] },
    kl: { ppo: ["kl", "heldout_kl"], dpo: ["heldout_kl"] },
    loss: { ppo: ["loss", "value_loss"], dpo: ["loss", "heldout_loss"] },
    heldout: { ppo: ["heldout_degenerate", "heldout_distinct_2", "heldout_unfinished"],
               dpo: ["heldout_accuracy", "heldout_degenerate", "heldout_distinct_2", "heldout_unfinished"] },
  };
  const COLORS = ["#2f5bd3", "#d9480f", "#2b8a3e", "#9c36b5", "#e8590c", "#1098ad"];
  const css = getComputedStyle(document.documentElement);
  Chart.defaults.color = css.getPropertyValue("--muted").trim() || "#5b6575";
  Chart.defaults.borderColor = css.getPropertyValue("--border").trim() || "#d8dde5";

  const charts = {};
  const latest = new Map(); // "phase/name" -> {phase, name, step, value}
  let afterId = 0;
  let finished = root.dataset.finished === "true";

  function makeChart(key) {
    const canvas = document.getElementById(`chart-${key}`);
    return new Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        elements: { point: { radius: 0, hitRadius: 6 }, line: { borderWidth: 2, tension: 0.15 } },
        scales: { x: { type: "linear", title: { display: true, text: "step" } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  function datasetFor(chart, label) {
    let dataset = chart.data.datasets.find((d) => d.label === label);
    if (!dataset) {
      const color = COLORS[chart.data.datasets.length % COLORS.length];
      dataset = { label, data: [], borderColor: color, backgroundColor: color };
      chart.data.datasets.push(dataset);
    }
    return dataset;
  }

  // The KL budget as a flat line across the steps drawn so far.
  function drawBudget() {
    const chart = charts.kl;
    if (!chart || !(klBudget > 0)) return;
    const steps = chart.data.datasets.filter((d) => d.label !== "budget").flatMap((d) => d.data.map((p) => p.x));
    if (!steps.length) return;
    const budget = datasetFor(chart, "budget");
    budget.borderDash = [6, 4];
    budget.data = [{ x: Math.min(...steps), y: klBudget }, { x: Math.max(...steps), y: klBudget }];
  }

  function addPoints(points) {
    const touched = new Set();
    for (const p of points) {
      afterId = Math.max(afterId, p.id);
      latest.set(`${p.phase}/${p.name}`, p);
      for (const [key, phases] of Object.entries(CHARTS)) {
        if (!charts[key] || !(phases[p.phase] || []).includes(p.name)) continue;
        datasetFor(charts[key], `${p.phase} · ${p.name}`).data.push({ x: p.step, y: p.value });
        touched.add(key);
      }
    }
    if (touched.has("kl")) drawBudget();
    for (const key of touched) {
      charts[key].update("none");
      const empty = document.querySelector(`[data-empty-for="${key}"]`);
      if (empty) empty.hidden = true;
    }
    if (points.length) renderLatest();
  }

  function renderLatest() {
    const body = document.querySelector("#latest-metrics tbody");
    const rows = [...latest.values()].sort((a, b) => (a.phase + a.name).localeCompare(b.phase + b.name));
    body.replaceChildren(...rows.map((p) => {
      const tr = document.createElement("tr");
      const value = Math.abs(p.value) >= 1000 ? p.value.toFixed(0) : p.value.toPrecision(4);
      for (const [text, numeric] of [[p.phase, false], [p.name, false], [String(p.step), true], [value, true]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (numeric) td.className = "num";
        tr.append(td);
      }
      return tr;
    }));
    document.getElementById("latest-empty").hidden = rows.length > 0;
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function formatTime(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") : "—";
  }

  function renderRound(round) {
    const badge = document.querySelector("#round-status .badge");
    badge.textContent = round.status;
    badge.className = `badge badge-${round.status}`;
    document.getElementById("round-progress").value = round.progress;
    setText("round-progress-text", `${Math.round(round.progress * 100)}%`);
    const error = document.getElementById("round-error");
    error.textContent = round.error || "";
    error.hidden = !round.error;
    setText("round-ratings", String(round.ratings_used));
    setText("round-started", formatTime(round.started_at));
    setText("round-finished", formatTime(round.finished_at));
    const log = document.getElementById("round-log");
    if (log.textContent !== round.log) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = round.log;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    for (const [id, checkpointId, version] of [
      ["round-base", round.base_checkpoint_id, round.base_checkpoint_version],
      ["round-checkpoint", round.produced_checkpoint_id, round.produced_checkpoint_version]]) {
      if (checkpointId && !document.querySelector(`#${id} a`)) {
        const link = document.createElement("a");
        link.href = `/admin/checkpoints#checkpoint-${checkpointId}`;
        link.textContent = `v${version ?? checkpointId}`;
        document.getElementById(id).replaceChildren(link);
      }
    }
    const wasFinished = finished;
    finished = !["queued", "running"].includes(round.status);
    const cancel = document.getElementById("cancel-form");
    if (cancel && finished) cancel.hidden = true;
    setText("round-live", finished ? "" : "live");
    // The gates, the samples side by side and what ran are drawn by the server: show them.
    if (finished && !wasFinished) window.location.reload();
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) throw new Error("Signed out: reload the page to sign in again.");
    if (!response.ok) throw new Error(`The server answered ${response.status}; retrying.`);
    return response.json();
  }

  async function poll() {
    const status = document.getElementById("round-poll-error");
    let stop = false;
    try {
      const round = await getJson(api);
      // Metrics after the round: a finished round's last points are fetched once more.
      addPoints(await getJson(`${api}/metrics?after_id=${afterId}`));
      renderRound(round);
      status.hidden = true;
      stop = finished;
    } catch (error) {
      status.textContent = error.message;
      status.hidden = false;
      stop = error.message.startsWith("Signed out");
    }
    if (!stop) setTimeout(poll, POLL_MS);
  }

  for (const key of Object.keys(CHARTS)) {
    if (document.getElementById(`chart-${key}`)?.tagName === "CANVAS") charts[key] = makeChart(key);
  }
  window.tuneloopCharts = charts; // for the browser test and for poking at in devtools
  poll();
})();
