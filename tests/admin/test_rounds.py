"""Launching, watching and cancelling rounds from the dashboard (PostgreSQL + Redis)."""

import json

import pytest
from sqlalchemy import select

from app.errors import QueueUnavailable
from app.models import RoundMetric, RoundStatus, TrainingRound
from app.settings import get_settings
from tests.admin.conftest import page_csrf
from tests.factories import make_user, rate_items

FORM = {"algorithm": "ppo", "policy_steps": "12", "kl_coef": "0.1", "learning_rate": "0.0003",
        "reward_model_epochs": "3", "ratings": "since_last_round", "seed": "7", "rater_weights": "False"}


def launch(client, **changes):
    return client.post("/admin/rounds", data=FORM | {"csrf_token": page_csrf(client)} | changes)


@pytest.fixture
def rated(db, lineage) -> None:
    """Just enough decisive comparisons for a round."""
    rate_items(db, get_settings().min_round_comparisons, checkpoint_id=lineage[0].id)


def test_launch_form_queues_a_round_with_the_chosen_settings(admin_client, db, lineage, rated, train_queue):
    response = launch(admin_client)
    assert response.status_code == 303
    [round_] = db.scalars(select(TrainingRound)).all()
    assert response.headers["location"] == f"/admin/rounds/{round_.id}"
    assert round_.status == RoundStatus.queued
    assert round_.config == {"algorithm": "ppo", "policy_steps": 12, "kl_coef": 0.1, "kl_budget": 15.0,
                             "learning_rate": 3e-4, "reward_model_epochs": 3, "lora_r": None,
                             "ratings": "since_last_round", "rater_weights": False, "exclude_raters": [],
                             "seed": 7}
    # The round's id went to the train queue once the transaction committed.
    [message] = train_queue.lrange("train", 0, -1)
    assert json.loads(message)["headers"]["argsrepr"] == f"[{round_.id}]"
    page = admin_client.get(f"/admin/rounds/{round_.id}").text
    assert "Round #1" in page and "badge-queued" in page and 'id="cancel-form"' in page


def test_second_launch_while_one_is_queued_shows_the_conflict(admin_client, db, lineage, rated, train_queue):
    launch(admin_client)
    response = launch(admin_client, algorithm="dpo")
    assert response.status_code == 409
    assert "a round is already queued or running" in response.text
    assert 'id="launch-error"' in response.text and "Traceback" not in response.text
    # The form keeps what the admin typed.
    assert 'value="dpo" checked' in response.text
    assert len(db.scalars(select(TrainingRound)).all()) == 1


def test_raters_left_out_are_names_and_an_unknown_one_is_a_message(admin_client, db, lineage, rated, train_queue):
    response = launch(admin_client, exclude_raters="ghost, <b>nobody</b>")
    assert response.status_code == 422
    assert "exclude_raters: no user named &#39;&lt;b&gt;nobody&lt;/b&gt;&#39;, &#39;ghost&#39;" in response.text
    assert 'value="ghost, &lt;b&gt;nobody&lt;/b&gt;"' in response.text  # kept in the form, escaped
    make_user(db, "mallory")
    db.commit()
    assert launch(admin_client, exclude_raters=" mallory ,").status_code == 303
    [round_] = db.scalars(select(TrainingRound)).all()
    assert round_.config["exclude_raters"] == ["mallory"]
    assert "the ratings of mallory" in admin_client.get(f"/admin/rounds/{round_.id}").text


def test_out_of_range_setting_is_a_message_on_the_page(admin_client, db, lineage, train_queue):
    response = launch(admin_client, policy_steps="0")
    assert response.status_code == 422
    assert "Policy steps: Input should be greater than or equal to 1" in response.text
    assert '<label class="has-error">Policy steps' in response.text
    assert db.scalars(select(TrainingRound)).all() == []


def test_launch_without_a_current_checkpoint_says_how_to_get_one(admin_client, db, train_queue):
    response = launch(admin_client)
    assert response.status_code == 422
    assert "no current checkpoint" in response.text


def test_queue_down_is_a_message_not_a_stack_trace(admin_client, db, lineage, rated, monkeypatch):
    def broker_down():
        raise QueueUnavailable("the task queue is unavailable (OperationalError); try again when the broker is back")

    monkeypatch.setattr("app.rounds.lifecycle.ensure_queue_available", broker_down)
    response = launch(admin_client)
    assert response.status_code == 503
    assert "the task queue is unavailable" in response.text
    assert db.scalars(select(TrainingRound)).all() == []


def test_cancel_button_cancels_a_queued_round(admin_client, db, lineage, rated, train_queue):
    round_id = int(launch(admin_client).headers["location"].rsplit("/", 1)[1])
    response = admin_client.post(f"/admin/rounds/{round_id}/cancel", data={"csrf_token": page_csrf(admin_client)})
    assert response.status_code == 303
    page = admin_client.get(response.headers["location"]).text
    assert "Cancellation requested" in page and "badge-cancelled" in page and "cancel-form" not in page
    db.expire_all()
    assert db.get(TrainingRound, round_id).status == RoundStatus.cancelled
    again = admin_client.post(f"/admin/rounds/{round_id}/cancel", data={"csrf_token": page_csrf(admin_client)})
    assert again.status_code == 409 and "already cancelled" in again.text


def test_round_page_escapes_log_and_error(admin_client, db, lineage):
    round_ = TrainingRound(algorithm="dpo", config={"algorithm": "dpo"}, status=RoundStatus.failed,
                           log="<script>alert(1)</script>\n", error="<img src=x onerror=alert(2)>")
    db.add(round_)
    db.commit()
    page = admin_client.get(f"/admin/rounds/{round_.id}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


def test_metrics_api_answers_the_session_cookie(admin_client, db, lineage):
    """admin.js polls the JSON API with the browser session, no token."""
    round_ = TrainingRound(algorithm="ppo", config={}, status=RoundStatus.running, progress=0.4)
    db.add(round_)
    db.flush()
    db.add_all([RoundMetric(round_id=round_.id, phase="ppo", step=s, name="kl", value=0.01 * s) for s in (1, 2, 3)])
    db.commit()
    assert admin_client.get(f"/api/v1/rounds/{round_.id}").json()["progress"] == 0.4
    points = admin_client.get(f"/api/v1/rounds/{round_.id}/metrics?after_id=0").json()
    later = admin_client.get(f"/api/v1/rounds/{round_.id}/metrics?after_id={points[0]['id']}").json()
    assert [p["step"] for p in points] == [1, 2, 3] and [p["step"] for p in later] == [2, 3]


def test_overview_lists_recent_rounds(admin_client, db, lineage, rated, train_queue):
    round_id = int(launch(admin_client).headers["location"].rsplit("/", 1)[1])
    page = admin_client.get("/admin").text
    assert f'href="/admin/rounds/{round_id}">#{round_id}</a>' in page
    assert f'<a href="/admin/rounds/{round_id}">Round {round_id}</a>' in page  # the active-round card


def test_too_few_ratings_is_a_message_with_the_numbers(admin_client, db, lineage, train_queue):
    rate_items(db, 3, ties=1, checkpoint_id=lineage[0].id)
    response = launch(admin_client)
    assert response.status_code == 409
    assert "4 rating(s) give 3 decisive comparison(s), 1 tie(s) and 0 thumb(s)" in response.text
    assert 'id="launch-error"' in response.text and "Traceback" not in response.text
    assert db.scalars(select(TrainingRound)).all() == []


def test_a_round_shows_its_gates_and_what_ran_on_the_api(admin_client, db, lineage):
    base, child = lineage
    gates = [{"name": "kl", "value": 17.3, "limit": "<= 15 nats", "passed": False, "detail": "held-out prompts"}]
    round_ = TrainingRound(algorithm="ppo", config={"algorithm": "ppo"}, status=RoundStatus.rejected,
                           base_checkpoint_id=base.id, produced_checkpoint_id=child.id, gates=gates,
                           report={"policy": {"steps_planned": 40, "steps_run": 12, "kept_step": 10, "checks": 4,
                                              "stopped": "kl beyond the limit at step 12; kept step 10"}})
    db.add(round_)
    db.commit()
    body = admin_client.get(f"/api/v1/rounds/{round_.id}").json()
    assert body["status"] == "rejected" and body["gates"] == [gates[0] | {"detail": "held-out prompts"}]
    assert (body["base_checkpoint_version"], body["produced_checkpoint_version"]) == (1, 2)
    assert body["report"]["policy"]["kept_step"] == 10
    assert admin_client.get("/api/v1/rounds").json()[0]["gates"][0]["passed"] is False
    page = admin_client.get(f"/admin/rounds/{round_.id}").text
    assert "12 run of 40 planned, kept step 10" in page and 'class="gate-failed"' in page


def test_reading_a_round_changes_nothing_and_the_beat_fails_a_silent_workers_round(admin_client, db, lineage):
    from datetime import timedelta

    from app.models import utcnow
    from app.rounds.lifecycle import fail_stale_rounds
    from worker.tasks import dispatch_rounds_task

    silent = TrainingRound(algorithm="dpo", config={}, status=RoundStatus.running, worker="gone:1",
                           heartbeat_at=utcnow() - timedelta(hours=1))
    db.add(silent)
    db.commit()
    assert admin_client.get(f"/api/v1/rounds/{silent.id}").json()["status"] == "running"
    assert admin_client.get("/api/v1/rounds").json()[0]["status"] == "running"
    assert "badge-running" in admin_client.get(f"/admin/rounds/{silent.id}").text
    db.expire_all()
    assert db.get(TrainingRound, silent.id).status == RoundStatus.running

    dispatch_rounds_task()  # what the beat runs every 10 s, on the generate queue
    db.expire_all()
    failed = db.get(TrainingRound, silent.id)
    assert failed.status == RoundStatus.failed and "worker lost" in failed.error
    assert fail_stale_rounds(db) == 0
