"""Rater statistics: counts, median time per rating, agreement and reliability on overlapping items."""

from sqlalchemy import func, select

from app.feedback.examples import comparisons_of, rating_rows
from app.feedback.leasing import skip_item
from app.feedback.reliability import rater_weights, reliabilities
from app.models import Item, User
from app.users.service import create_token
from tests.admin.conftest import answer, page_csrf
from tests.factories import make_items, make_user


def test_counts_median_time_and_agreement(admin_client, db):
    ann, bob, cy = (make_user(db, name).id for name in ("ann", "bob", "cy"))
    first, second = make_items(db, 2, overlap=3)
    a1, _ = (r.sample_id for r in db.get(Item, first).responses)
    # Item 1: ann and bob prefer the same response, cy calls it a tie.
    answer(db, ann, first, "preferred", preferred=a1, time_spent_ms=4000)
    answer(db, bob, first, "preferred", preferred=a1, time_spent_ms=10000)
    answer(db, cy, first, "tie", time_spent_ms=2000)
    # Item 2: ann and bob both say "both bad"; cy never answers it.
    answer(db, ann, second, "both_bad", time_spent_ms=6000)
    answer(db, bob, second, "both_bad", time_spent_ms=12000)

    page = admin_client.get("/admin/raters").text
    rows = {name: page.split(f'<th scope="row">{name}')[1].split("</tr>")[0] for name in ("ann", "bob", "cy")}
    # ann: 2 ratings, median 5 s, agrees with bob twice and disagrees with cy once -> 2/3.
    assert ">2</td>" in rows["ann"] and "5.0 s" in rows["ann"] and "67%" in rows["ann"]
    assert "11.0 s" in rows["bob"] and "67%" in rows["bob"]
    assert "2.0 s" in rows["cy"] and ">0%</td>" in rows["cy"]
    # Overall: 4 pairs (3 on item 1, 1 on item 2), 2 agree.
    assert "2 of 4 rater pairs gave the same answer" in page and ">50%<" in page



def test_a_hostile_rater_is_flagged_and_their_ratings_weigh_nothing(admin_client, db):
    admin_token = create_token(db, db.scalar(select(User).where(User.name == "ada")))
    careful = [make_user(db, name).id for name in ("ann", "bob", "cy")]
    mallory = make_user(db, "mallory").id
    for item_id in make_items(db, 24, overlap=4):
        good, bad = (r.sample_id for r in db.get(Item, item_id).responses)
        for user in careful:
            answer(db, user, item_id, "preferred", preferred=good)
        answer(db, mallory, item_id, "preferred", preferred=bad)

    raters = {r["name"]: r for r in admin_client.get(
        "/api/v1/raters", headers={"Authorization": f"Bearer {admin_token}"}).json()}
    assert set(raters["mallory"]) == {"name", "ratings", "agreement", "reliability", "reliability_interval",
                                      "gold_items", "gold_accuracy", "flagged", "weight"}
    assert raters["mallory"]["flagged"] and raters["mallory"]["reliability"] < 0.1 and raters["mallory"]["weight"] == 0
    assert raters["mallory"]["ratings"] == 24 and raters["mallory"]["agreement"] == 0.0
    for name in ("ann", "bob", "cy"):
        assert not raters[name]["flagged"] and raters[name]["reliability"] > 0.9
        low, high = raters[name]["reliability_interval"]
        assert low < raters[name]["reliability"] <= high
    row = admin_client.get("/admin/raters").text.split('<th scope="row">mallory')[1].split("</tr>")[0]
    assert "flagged" in row and ">0.00<" in row

    # What a round trains on: mallory's comparisons weigh nothing, the others' count.
    rows = rating_rows(db, "all")
    weights = rater_weights(reliabilities(db), {r.rater_id for r in rows})
    by_rater = {}
    for row, comparison in zip(rows, comparisons_of(rows, weights)):
        by_rater.setdefault(row.rater_id, set()).add(comparison.weight)
    assert by_rater[mallory] == {0.0} and all(min(by_rater[user]) > 0.8 for user in careful)
    assert admin_client.get("/api/v1/raters", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_team_is_added_from_a_csv_all_or_none_with_tokens_shown_once(admin_client, db):
    csrf = page_csrf(admin_client, "/admin/raters")
    bad = admin_client.post("/admin/raters/import",
                            data={"csrf_token": csrf, "csv": "name,role\nann,rater\nbob,boss\n"})
    assert bad.status_code == 422 and "the pasted CSV:3: role &#39;boss&#39; is neither" in bad.text
    assert db.scalar(select(func.count()).select_from(User).where(User.name.in_(["ann", "bob"]))) == 0
    assert "bob,boss" in bad.text  # what was pasted stays in the form

    upload = admin_client.post("/admin/raters/import", data={"csrf_token": csrf},
                               files={"file": ("team.csv", b"name,role\nann,\nbob,admin\n", "text/csv")})
    assert upload.status_code == 200 and upload.headers["cache-control"] == "no-store"
    tokens = upload.text.split('id="import-tokens">')[1].split("</pre>")[0].strip().splitlines()
    assert tokens[0] == "name,token" and [t.split(",")[0] for t in tokens[1:]] == ["ann", "bob"]
    ann_token = tokens[1].split(",")[1]
    assert admin_client.get("/api/v1/items/next", headers={"Authorization": f"Bearer {ann_token}"}).status_code == 204
    db.expire_all()
    assert db.scalar(select(User.role).where(User.name == "bob")) == "admin"
    # Shown once: the page does not show them again.
    assert 'id="import-tokens"' not in admin_client.get("/admin/raters").text


def test_gold_items_measure_raters_who_share_no_item(admin_client, db):
    """Each item answered by one rater only: no agreement to count, but gold answers tell the careful
    rater from the hostile one, and training weighs them accordingly."""
    headers = {"Authorization": f"Bearer {create_token(db, db.scalar(select(User).where(User.name == 'ada')))}"}
    ann, mallory = make_user(db, "ann").id, make_user(db, "mallory").id
    items = make_items(db, 24)
    for n, item_id in enumerate(items):
        good, bad = (r.sample_id for r in db.get(Item, item_id).responses)
        marked = admin_client.put(f"/api/v1/items/{item_id}/gold", headers=headers,
                                  json={"verdict": "preferred", "preferred_response_id": good})
        assert marked.status_code == 200 and marked.json()["overlap"] == 100
        # Gold items are open to all: each rater passes the other's half.
        if n % 2:
            skip_item(db, mallory, item_id)
            answer(db, ann, item_id, "preferred", preferred=good)
        else:
            skip_item(db, ann, item_id)
            answer(db, mallory, item_id, "preferred", preferred=bad)

    raters = {r["name"]: r for r in admin_client.get("/api/v1/raters", headers=headers).json()}
    assert raters["ann"]["agreement"] is None and raters["ann"]["gold_items"] == 12
    assert raters["ann"]["gold_accuracy"] == 1.0 and raters["ann"]["reliability"] > 0.9
    assert raters["mallory"]["gold_accuracy"] == 0.0 and raters["mallory"]["flagged"]
    assert rater_weights(reliabilities(db), {ann, mallory})[mallory] == 0.0
    row = admin_client.get("/admin/raters").text.split('<th scope="row">mallory')[1].split("</tr>")[0]
    assert "0 of 12" in row


def test_gold_answers_must_fit_the_item(admin_client, db):
    headers = {"Authorization": f"Bearer {create_token(db, db.scalar(select(User).where(User.name == 'ada')))}"}
    (item_id,) = make_items(db, 1)
    other = max(r.sample_id for r in db.get(Item, item_id).responses) + 1
    for body in ({"verdict": "preferred"}, {"verdict": "preferred", "preferred_response_id": other},
                 {"verdict": "tie", "preferred_response_id": other}, {"verdict": "maybe"}):
        assert admin_client.put(f"/api/v1/items/{item_id}/gold", json=body, headers=headers).status_code == 422
    assert admin_client.put("/api/v1/items/999999/gold", json={"verdict": "tie"}, headers=headers).status_code == 404
    db.expire_all()
    assert db.get(Item, item_id).gold is None
    rater = {"Authorization": f"Bearer {create_token(db, make_user(db, 'ann'))}"}
    db.commit()
    assert admin_client.put(f"/api/v1/items/{item_id}/gold", json={"verdict": "tie"}, headers=rater).status_code == 403
    assert admin_client.put(f"/api/v1/items/{item_id}/gold", json={"verdict": "tie"}, headers=headers).json() == {
        "item_id": item_id, "verdict": "tie", "preferred_response_id": None, "overlap": 100}
