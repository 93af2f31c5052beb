"""The rating page over HTTP: answers stored once, the next item in the same reply,
friendly notices instead of errors, and nothing that reveals the model."""

import re

import pytest
from sqlalchemy import func, select

from app.checkpoints.service import add_checkpoint
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Checkpoint, CheckpointStatus, Lease, Rating, Sample
from tests.auth.web_client import PASSWORD, csrf_from, login
from tests.factories import expire_leases, make_items, make_user

FIELD = re.compile(r'name="(item_id|side_a|side_b|idempotency_key)"\s+value="([^"]*)"')


@pytest.fixture
def rater(client, db):
    user = make_user(db, "rita", password=PASSWORD)
    db.commit()
    login(client, "rita")
    return user


def form_of(html: str) -> dict:
    return dict(FIELD.findall(html)) | {"csrf_token": csrf_from(html)}


def post_json(client, form: dict, **answer):
    body = {k: v for k, v in form.items() if k != "csrf_token"} | answer
    return client.post("/rate/answer", json=body, headers={
        "X-CSRF-Token": form["csrf_token"], "Accept": "application/json"})


def test_json_answer_stores_once_and_returns_the_next_item(client, db, rater):
    first_id, second_id = make_items(db, 2)
    form = form_of(client.get("/rate").text)
    assert form["item_id"] == str(first_id)
    reply = post_json(client, form, choice="b", score_a="2", score_b="6", comment=" crisp ")
    assert reply.status_code == 200 and reply.json()["notice"] == "Saved."
    assert reply.json()["item_id"] == second_id
    assert f'name="item_id" value="{second_id}"' in reply.json()["html"]
    # A double click (same key, same body) replays the first result.
    again = post_json(client, form, choice="b", score_a="2", score_b="6", comment=" crisp ")
    assert again.json()["notice_key"] == "replayed"
    [rating] = db.scalars(select(Rating)).all()
    side_a, side_b = int(form["side_a"]), int(form["side_b"])
    assert (rating.verdict, rating.preferred_sample_id) == ("preferred", side_b)
    assert rating.scores == {str(side_a): 2, str(side_b): 6} and rating.comment == "crisp"
    assert "1</strong> rated today" in reply.json()["html"]


def test_plain_form_post_redirects_to_the_next_item(client, db, rater):
    make_items(db, 2)
    form = form_of(client.get("/rate").text)
    response = client.post("/rate", data=form | {"choice": "tie", "action": "submit"})
    assert response.status_code == 303 and response.headers["location"] == "/rate?notice=saved"
    assert "Saved." in client.get(response.headers["location"]).text
    assert db.scalar(select(Rating.verdict)) == "tie"


def test_a_missing_choice_keeps_the_answer_and_says_what_is_missing(client, db, rater):
    make_items(db, 1)
    form = form_of(client.get("/rate").text)
    reply = post_json(client, form, comment="half done")
    assert reply.status_code == 422 and reply.json()["field"] == "choice"
    page = client.post("/rate", data=form | {"comment": "half <b>done</b>", "score_a": "4"})
    assert page.status_code == 422 and "Choose A better, B better, tie or both bad" in page.text
    assert 'value="half &lt;b&gt;done&lt;/b&gt;"' in page.text
    assert 'name="score_a" value="4" checked' in page.text
    assert db.scalar(select(func.count()).select_from(Rating)) == 0


def test_score_items_use_one_column_and_need_a_score_or_a_thumb(client, db, rater):
    make_items(db, 2, responses=1)
    page = client.get("/rate").text
    assert "responses one" in page and "Which response is better" not in page and 'name="thumb"' in page
    form = form_of(page)
    assert post_json(client, form).status_code == 422
    assert post_json(client, form, score_a="6").status_code == 200
    assert db.scalar(select(Rating.scores)) == {form["side_a"]: 6}
    form = form_of(client.get("/rate").text)
    assert post_json(client, form, thumb="sideways").status_code == 422
    assert post_json(client, form, thumb="up").status_code == 200
    assert db.scalar(select(Rating.thumb).where(Rating.item_id == int(form["item_id"]))) == "up"


def test_skip_moves_on(client, db, rater):
    first_id, second_id = make_items(db, 2)
    form = form_of(client.get("/rate").text)
    reply = post_json(client, form, action="skip")
    assert reply.json()["notice_key"] == "skipped" and reply.json()["item_id"] == second_id
    assert db.scalar(select(Lease.skipped_at).where(Lease.item_id == first_id)) is not None


def test_a_stale_form_gets_a_notice_and_the_next_item(client, db, rater):
    first_id, second_id = make_items(db, 2)
    form = form_of(client.get("/rate").text)
    # The lease runs out and another rater answers the item meanwhile.
    expire_leases(db, first_id)
    other = make_user(db, "otto").id
    leased = lease_next_item(db, other)
    assert leased.item_id == first_id
    submit_rating(db, other, RatingInput(item_id=first_id, verdict="tie"))
    db.commit()
    reply = post_json(client, form, choice="a")
    assert reply.status_code == 200 and reply.json()["notice_key"] == "expired"
    assert reply.json()["item_id"] == second_id
    response = client.post("/rate", data=form | {"choice": "a"})
    assert response.headers["location"] == "/rate?notice=expired"


def test_the_page_never_names_the_model(client, db, rater):
    checkpoint = Checkpoint(version=7, name="secret-ckpt-name", path="/ckpt/secret-path")
    db.add(checkpoint)
    db.flush()
    make_items(db, 1, checkpoint_id=checkpoint.id)
    for sample in db.scalars(select(Sample)):
        sample.source = "vendor-secret-label"
    db.commit()
    page = client.get("/rate").text
    for secret in ("secret-ckpt-name", "secret-path", "vendor-secret-label", "checkpoint"):
        assert secret not in page


def test_user_text_is_escaped(client, db, rater):
    make_items(db, 1, prompt_text="<script>alert(1)</script><img src=x onerror=alert(2)> {i}")
    page = client.get("/rate").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page


def test_empty_queue_shows_the_empty_state(client, db, rater):
    page = client.get("/rate").text
    assert "Nothing to rate right now" in page and 'id="rate-form"' not in page
    # No model yet (the demo is still building it): the page says so, not "you answered everything".
    assert 'data-reason="no_model"' in page and "no model ready to generate more yet" in page
    assert client.get("/rate/panel", headers={"Accept": "application/json"}).json()["item_id"] is None


def test_empty_queue_says_why(client, db, rater):
    base = add_checkpoint(db, path="base", name="base", parent_id=None, status=CheckpointStatus.current)
    db.commit()
    assert 'data-reason="generating"' in client.get("/rate").text
    make_items(db, 1, checkpoint_id=base.id)
    form = form_of(client.get("/rate").text)
    assert post_json(client, form, action="skip").status_code == 200
    assert 'data-reason="answered"' in client.get("/rate").text


def test_responses_render_markdown_but_nothing_in_them_can_act(client, db, rater):
    written = ("**Steps**\n\n1. one\n2. two\n\n```python\nprint('hi')\n```\n\n<script>alert(1)</script> "
               "[click](javascript:alert(2)) [site](https://example.com) ![pixel](https://example.com/p.png)")
    [item_id] = make_items(db, 1)
    for sample in db.scalars(select(Sample)):
        sample.text = written
    db.commit()
    page = client.get("/rate").text
    response = page.split('data-testid="response-a">')[1].split("</div>")[0]
    assert "<strong>Steps</strong>" in response and "<ol>" in response
    assert '<pre><code class="language-python">print(\'hi\')' in response
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response and "<script>alert" not in page
    assert "<a " not in response and "<img" not in response  # links and images are text
    assert "[site](https://example.com)" in response
