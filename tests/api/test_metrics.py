"""GET /metrics: Prometheus text for operators, from the database and this process, admins only."""

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.users.service import create_token
from tests.api.conftest import bearer
from tests.factories import make_user, rate_items


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_give_ratings_pool_rounds_and_request_latency(client, admin, rater, db):
    rate_items(db, 3, ties=1)
    assert client.get("/api/v1/items/next", headers=rater).status_code == 204
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = families(response.text)
    [ratings] = found["tuneloop_ratings"].samples
    assert ratings.value == 4
    assert found["tuneloop_candidates_under_review"].samples[0].value == 0
    assert found["tuneloop_round_duration_seconds"].samples  # buckets, even with no round yet
    latency = [s for s in found["tuneloop_request_seconds"].samples
               if s.name.endswith("_count") and s.labels["route"] == "GET /api/v1/items/next"]
    assert latency and latency[0].value >= 1
    # Redis is the test broker: each queue's depth is reported.
    assert {s.labels["queue"] for s in found["tuneloop_queue_depth"].samples} == {"generate", "train"}


def test_metrics_need_an_admin(client, rater):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=rater).status_code == 403


def test_metrics_on_both_backends_read_through_the_requests_own_session(any_db):
    """On SQLite every transaction takes the write lock: a second session would wait on the request's."""
    headers = bearer(create_token(any_db, make_user(any_db, "root", admin=True)))
    any_db.commit()
    rate_items(any_db, 2)
    with TestClient(create_app()) as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert families(response.text)["tuneloop_ratings"].samples[0].value == 2
