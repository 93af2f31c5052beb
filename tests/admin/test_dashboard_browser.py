"""The dashboard in headless Chromium under the real CSP: live charts, then screenshots."""

from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from app.models import RoundMetric
from tests.admin.seed import PASSED_GATES, finish_as_candidate, seed_dashboard
from tests.factories import make_user
from tests.pages.browser import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "correct horse battery"


@pytest.fixture
def admin_page(browser, live_server, db) -> Iterator:
    make_user(db, "ada", admin=True, password=PASSWORD)
    db.commit()
    context = browser.new_context(base_url=live_server, viewport={"width": 1360, "height": 900},
                                   color_scheme="light")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # A CSP violation is logged to the console, not raised: collect those too.
    tab.on("console", lambda message: errors.append(f"{message.text} {message.location}")
           if message.type == "error" else None)
    tab.goto("/admin")
    tab.wait_for_url("**/login?next=%2Fadmin")
    tab.fill('input[name="name"]', "ada")
    tab.fill('input[name="password"]', PASSWORD)
    tab.press('input[name="password"]', "Enter")
    tab.wait_for_url("**/admin")
    tab.script_errors = errors
    yield tab
    context.close()


def chart_summary(page) -> dict:
    return page.evaluate("""() => Object.fromEntries(Object.entries(window.tuneloopCharts).map(
        ([key, chart]) => [key, chart.data.datasets.map((d) => [d.label, d.data.length])]))""")


def canvas_has_ink(page, key: str) -> bool:
    """Some pixel of the chart's canvas is drawn (not all transparent)."""
    return page.evaluate("""(key) => {
        const canvas = document.getElementById(`chart-${key}`);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
        return false;
    }""", key)


def test_round_page_draws_live_charts(admin_page, db):
    round_id = seed_dashboard(db)
    page = admin_page
    page.goto(f"/admin/rounds/{round_id}")
    page.wait_for_function("() => window.tuneloopCharts && window.tuneloopCharts.loss.data.datasets.length >= 2")
    charts = chart_summary(page)
    # One phase per chart, so each x axis counts that phase's steps.
    assert dict(charts["rm"]) == {"reward_model · loss": 24, "reward_model · eval_loss": 4,
                                  "reward_model · accuracy": 24, "reward_model · eval_accuracy": 4}
    assert dict(charts["loss"]) == {"ppo · loss": 18, "ppo · value_loss": 18}
    assert dict(charts["reward"]) == {"ppo · reward_mean": 18}
    # The KL per rollout, on held-out prompts at each check, and the round's budget as a line.
    assert dict(charts["kl"]) == {"ppo · kl": 18, "ppo · heldout_kl": 6, "budget": 2}
    assert dict(charts["heldout"]) == {"ppo · heldout_degenerate": 6, "ppo · heldout_distinct_2": 6,
                                       "ppo · heldout_unfinished": 6}
    for key in ("rm", "reward", "kl", "loss", "heldout"):
        assert canvas_has_ink(page, key), key
    assert page.locator("#latest-metrics tbody tr").count() >= 10
    assert page.locator("#round-log").inner_text().startswith("12:00:01 ppo on checkpoint 2")
    assert page.locator("#round-base a").inner_text() == "v2"
    screenshot(page, "dashboard-round.png")

    # The worker reports more steps, then publishes a candidate: the page follows, then shows
    # the gates and the samples side by side.
    db.execute(insert(RoundMetric), [{"round_id": round_id, "phase": "ppo", "step": 19, "name": name,
                                      "value": 0.5} for name in ("reward_mean", "kl")])
    db.commit()
    page.wait_for_function("() => window.tuneloopCharts.reward.data.datasets[0].data.length === 19")
    candidate = finish_as_candidate(db, round_id)
    page.wait_for_selector("#round-gates")
    assert page.locator("#round-status .badge").inner_text() == "succeeded"
    assert page.locator("#round-checkpoint a").inner_text() == "v4"
    assert page.locator("#round-checkpoint .badge").inner_text() == "candidate"
    assert page.locator(f'#round-checkpoint a[href="/admin/checkpoints#checkpoint-{candidate}"]').count() == 1
    assert page.locator("#round-progress-text").inner_text() == "100%"
    assert page.locator("#cancel-form").count() == 0
    assert page.locator("#round-gates tbody tr").count() == len(PASSED_GATES)
    samples = page.locator("#round-samples tbody tr")
    assert samples.count() == 2
    # A model's text is text: the <b> a sample holds is shown, not rendered.
    assert "<b>pleasant</b>" in samples.nth(1).inner_text()
    assert page.locator("#round-samples b").count() == 0
    assert "40 run of 40 planned" in page.locator("#round-steps").inner_text()
    screenshot(page, "dashboard-round-gates.png")
    assert page.script_errors == []


def test_a_dpo_round_says_the_reward_model_is_not_used(admin_page, db):
    seed_dashboard(db)
    page = admin_page
    page.goto("/admin/rounds/1")
    assert "Not used: DPO learns from the rated pairs directly" in page.locator("#chart-rm-unused").inner_text()
    assert page.locator("#round-samples tbody tr").count() == 2
    assert page.script_errors == []


def test_overview_and_checkpoints_with_a_candidate_under_review(admin_page, db):
    round_id = seed_dashboard(db)
    candidate = finish_as_candidate(db, round_id)
    page = admin_page
    page.goto("/admin")
    assert page.locator("#recent-rounds tbody tr").count() == 5
    review = page.locator("#review-card").inner_text()
    assert "v4" in review and "won 9 of 12 decisive blind comparisons" in review and "8 more before a verdict" in review
    screenshot(page, "dashboard.png")
    page.goto("/admin/checkpoints")
    assert page.locator("#checkpoints tbody tr").count() == 4
    row = page.locator(f"#checkpoint-{candidate}")
    assert row.locator(".badge").inner_text() == "candidate"
    assert row.locator("button", has_text="Promote").count() == 1
    assert row.locator("button", has_text="Reject").count() == 1
    assert "rejected by the gates of round 3" in page.locator("#checkpoint-3").inner_text()
    screenshot(page, "dashboard-checkpoints.png")
    page.goto("/admin/raters")
    screenshot(page, "dashboard-raters.png")
    assert page.script_errors == []
