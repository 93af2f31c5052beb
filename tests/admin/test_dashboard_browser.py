"""The dashboard in headless Chromium under the real CSP: live charts, then screenshots."""

from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from app.checkpoints.service import add_checkpoint
from app.models import RoundMetric, RoundStatus, TrainingRound, utcnow
from tests.admin.seed import seed_dashboard
from tests.factories import make_user
from tests.pages.browser import SCREENSHOTS

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
    # (The app has no favicon; the browser's request for one is not the dashboard's error.)
    tab.on("console", lambda message: errors.append(f"{message.text} {message.location}")
           if message.type == "error" and "favicon.ico" not in message.location.get("url", "") else None)
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
    assert dict(charts["loss"]) == {"reward_model · loss": 24, "reward_model · eval_loss": 4,
                                    "ppo · loss": 18, "ppo · value_loss": 18}
    assert dict(charts["reward"]) == {"ppo · reward_mean": 18}
    assert dict(charts["kl"]) == {"ppo · kl": 18, "ppo · kl_k3": 18}
    assert dict(charts["accuracy"]) == {"reward_model · accuracy": 24, "reward_model · eval_accuracy": 4}
    for key in ("reward", "kl", "loss", "accuracy"):
        assert canvas_has_ink(page, key), key
    assert page.locator("#latest-metrics tbody tr").count() >= 10
    assert page.locator("#round-log").inner_text().startswith("12:00:01 ppo on checkpoint 2")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-round.png"), full_page=True)

    # The worker reports more steps, then publishes: the page follows without a reload.
    db.execute(insert(RoundMetric), [{"round_id": round_id, "phase": "ppo", "step": 19, "name": name,
                                      "value": 0.5} for name in ("reward_mean", "kl")])
    db.commit()
    page.wait_for_function("() => window.tuneloopCharts.reward.data.datasets[0].data.length === 19")
    round_ = db.get(TrainingRound, round_id)
    produced = add_checkpoint(db, path=f"round-{round_id}", name=f"round-{round_id}",
                              parent_id=round_.base_checkpoint_id)
    round_.status, round_.progress, round_.finished_at = RoundStatus.succeeded, 1.0, utcnow()
    round_.produced_checkpoint_id = produced.id
    db.commit()
    page.wait_for_selector(f'#round-checkpoint a[href="/admin/checkpoints#checkpoint-{produced.id}"]')
    assert page.locator("#round-status .badge").inner_text() == "succeeded"
    assert page.locator("#round-progress-text").inner_text() == "100%"
    assert page.locator("#cancel-form").is_hidden()
    assert page.script_errors == []


def test_overview_screenshot(admin_page, db):
    seed_dashboard(db)
    page = admin_page
    page.goto("/admin")
    assert page.locator("#recent-rounds tbody tr").count() == 3
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.goto("/admin/checkpoints")
    assert page.locator("#checkpoints tbody tr").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "dashboard-checkpoints.png"), full_page=True)
    page.goto("/admin/raters")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-raters.png"), full_page=True)
    assert page.script_errors == []
