// The rating page, keyboard first. Answers go out as JSON; the reply carries the
// next item's panel (rendered and escaped on the server), swapped in without a reload.
// Without JS the same form posts normally and the server redirects back.
(function () {
  "use strict";

  const panel = document.getElementById("rate-panel");
  const dialog = document.getElementById("guidelines-dialog");
  if (!panel) return;

  const RETRY_DELAYS_MS = [300, 1000, 2500];
  const EMPTY_POLL_MS = 10000;
  let shownAt = performance.now();
  let busy = false;
  let armedSide = null; // "a" or "b": the next digit scores that side

  const currentForm = () => document.getElementById("rate-form");

  function prepareForm() {
    const form = currentForm();
    // rate.js shows its own messages; the browser's validation bubbles are for no-JS only.
    if (form) form.noValidate = true;
    shownAt = performance.now();
    armedSide = null;
  }

  function showError(message, field) {
    const box = document.getElementById("rate-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
    document.querySelectorAll(".has-error").forEach((el) => el.classList.remove("has-error"));
    const form = currentForm();
    const input = field && form ? form.querySelector(`[name="${field}"]`) : null;
    const group = input && input.closest("fieldset");
    if (group) group.classList.add("has-error");
  }

  function showNotice(message) {
    const notice = document.getElementById("rate-notice");
    if (notice) notice.textContent = message;
  }

  function check(form, name, value) {
    const input = form.querySelector(`input[name="${name}"][value="${value}"]`);
    if (input) input.checked = true;
    return input;
  }

  function arm(side) {
    armedSide = side;
    document.querySelectorAll(".response").forEach((el) => {
      el.classList.toggle("armed", el.dataset.side === side);
    });
  }

  function setScore(form, side, digit) {
    if (digit === "0") {
      form.querySelectorAll(`input[name="score_${side}"]`).forEach((i) => { i.checked = false; });
    } else {
      check(form, `score_${side}`, digit);
    }
    showError("");
  }

  function validate(form, data) {
    if (form.dataset.kind === "score" && !data.score_a && !data.thumb) {
      return ["Give the response a score from 1 to 7, or a thumb (U or D), first.", "score_a"];
    }
    if (form.dataset.kind === "compare" && !data.choice) {
      return ["Choose A better, B better, tie or both bad first (keys 1–4).", "choice"];
    }
    return null;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Network errors and gateway hiccups are retried with the same idempotency key,
  // so the answer is stored once however often it is sent.
  async function postAnswer(body, csrfToken) {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch("/rate/answer", {
          method: "POST",
          headers: { "Content-Type": "application/json", "Accept": "application/json",
                     "X-CSRF-Token": csrfToken },
          body: JSON.stringify(body),
          credentials: "same-origin",
        });
        if (![502, 503, 504].includes(response.status) || attempt >= RETRY_DELAYS_MS.length) {
          return response;
        }
      } catch (error) {
        if (attempt >= RETRY_DELAYS_MS.length) throw error;
      }
      await sleep(RETRY_DELAYS_MS[attempt]);
    }
  }

  function swapPanel(html) {
    panel.innerHTML = html; // server-rendered with autoescaping
    prepareForm();
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
    window.scrollTo(0, 0);
  }

  async function send(action) {
    const form = currentForm();
    if (!form || busy) return; // a second Enter while the first is in flight does nothing
    const data = Object.fromEntries(new FormData(form));
    if (action === "submit") {
      const problem = validate(form, data);
      if (problem) { showError(problem[0], problem[1]); return; }
    }
    const started = performance.now();
    const body = {
      item_id: Number(data.item_id), action, choice: data.choice || "",
      side_a: data.side_a ? Number(data.side_a) : null,
      side_b: data.side_b ? Number(data.side_b) : null,
      score_a: data.score_a || "", score_b: data.score_b || "", thumb: data.thumb || "",
      comment: data.comment || "", idempotency_key: data.idempotency_key || "",
      time_spent_ms: Math.round(started - shownAt),
    };
    busy = true;
    form.classList.add("is-busy");
    try {
      let response = await postAnswer(body, data.csrf_token);
      if (response.status === 403) {
        // Signed in again in another tab: a new CSRF token. Fetch it and send once more,
        // rather than lose the answer to a reload.
        const token = await freshCsrfToken();
        if (token && token !== data.csrf_token) response = await postAnswer(body, token);
      }
      const reply = await response.json().catch(() => ({}));
      if (response.ok) {
        swapPanel(reply.html);
        showNotice(reply.notice || "");
        // Read by the latency benchmark and handy in the console.
        panel.dataset.lastRoundTripMs = String(Math.round(performance.now() - started));
        panel.dataset.answered = String(Number(panel.dataset.answered || 0) + 1);
      } else if (response.status === 401 && reply.login) {
        window.location.assign(reply.login);
      } else {
        showError(reply.detail || `Something went wrong (HTTP ${response.status}). ` +
                  "Your answer is still here: press Enter to try again.", reply.field);
      }
    } catch (error) {
      showError("Could not reach the server. Your answer is still here: press Enter to try again.");
    } finally {
      busy = false;
      const stillThere = currentForm();
      if (stillThere) stillThere.classList.remove("is-busy");
    }
  }

  async function freshCsrfToken() {
    const response = await fetch("/rate/panel", { headers: { "Accept": "application/json" } });
    if (!response.ok) return null;
    const html = (await response.json()).html;
    const parsed = new DOMParser().parseFromString(html, "text/html");
    const holder = parsed.querySelector("[data-csrf-token]");
    const token = holder && holder.dataset.csrfToken;
    if (!token) return null;
    document.querySelectorAll('input[name="csrf_token"]').forEach((i) => { i.value = token; });
    return token;
  }

  async function refresh() {
    const response = await fetch("/rate/panel", { headers: { "Accept": "application/json" } });
    if (!response.ok) return;
    const reply = await response.json();
    if (reply.item_id !== null || !currentForm()) swapPanel(reply.html);
  }

  function toggleGuidelines() {
    if (!dialog) { window.location.assign("/guidelines"); return; }
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  // Focus left on the dialog's Close button would swallow the next Enter.
  if (dialog) {
    dialog.addEventListener("close", () => {
      if (document.activeElement && document.activeElement !== document.body) {
        document.activeElement.blur();
      }
    });
  }

  document.addEventListener("submit", (event) => {
    if (event.target.id !== "rate-form") return;
    event.preventDefault();
    send(event.submitter && event.submitter.value === "skip" ? "skip" : "submit");
  });

  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-open-guidelines]");
    if (link && dialog) { event.preventDefault(); toggleGuidelines(); }
  });

  // Clicking a choice or a score clears a stale error message.
  document.addEventListener("change", () => showError(""));

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (dialog && dialog.open) {
      if (key === "g" || key === "G" || key === "?") { event.preventDefault(); dialog.close(); }
      return; // Esc closes the dialog natively
    }
    const target = event.target;
    if (target.matches("input[type=text], textarea")) {
      // Enter submits through the form; Esc hands the keys back to the page.
      if (key === "Escape") { target.blur(); event.preventDefault(); }
      return;
    }
    // A button of the closed dialog can still hold the focus until its close event's blur runs:
    // keys pressed meanwhile are the page's.
    if (target.matches("button, a, summary, select") && !(dialog && dialog.contains(target))) {
      if (key === "Enter" || key === " ") return; // let them do what they show
    }
    const form = currentForm();
    let handled = true;
    if (key === "g" || key === "G" || key === "?") toggleGuidelines();
    else if (!form) {
      if (key === "r" || key === "R") refresh(); else handled = false;
    } else if (key === "Enter") send("submit");
    else if (key === "s" || key === "S") send("skip");
    else if (key === "c" || key === "C") { const c = form.elements.comment; if (c) c.focus(); }
    else if (key === "Escape") arm(null);
    else if (form.dataset.kind === "compare" && /^[abAB]$/.test(key)) arm(key.toLowerCase());
    else if (/^[0-7]$/.test(key) && form.dataset.kind === "score") setScore(form, "a", key);
    else if (/^[uUdD]$/.test(key) && form.dataset.kind === "score") {
      check(form, "thumb", key.toLowerCase() === "u" ? "up" : "down");
      showError("");
    }
    else if (/^[0-7]$/.test(key) && armedSide) { setScore(form, armedSide, key); arm(null); }
    else if (/^[1-4]$/.test(key) && form.dataset.kind === "compare") {
      check(form, "choice", ["a", "b", "tie", "both_bad"][Number(key) - 1]);
      showError("");
    } else if (/^[5-7]$/.test(key) && form.dataset.kind === "compare") {
      showError("To score a response, press A or B first, then 1–7.");
    } else handled = false;
    if (handled) event.preventDefault();
  });

  // An empty queue fills up as the model generates: look again now and then.
  setInterval(() => {
    if (!currentForm() && document.visibilityState === "visible") refresh().catch(() => {});
  }, EMPTY_POLL_MS);

  prepareForm();
})();
