"""GET /api/v1/export/preferences and /export/scores: JSONL with provenance, admins only."""

import json

from app.models import Checkpoint
from tests.api.test_ratings import lease
from tests.factories import make_items


def answer(client, headers, body_for) -> dict:
    shown = lease(client, headers)
    response = client.post("/api/v1/ratings", json=body_for(shown), headers=headers)
    assert response.status_code == 201, response.text
    return shown


def jsonl(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def rated_fixture(client, db, make_rater):
    """Three compare items (preferred, tie, both bad), one 3-way item, one scored item."""
    checkpoint = Checkpoint(version=7, path="/tmp/c7")
    db.add(checkpoint)
    db.commit()
    make_items(db, 3, checkpoint_id=checkpoint.id)
    make_items(db, 1, responses=3, prompt_text="Three {i}")
    make_items(db, 1, responses=1, prompt_text="Score {i}")
    ann = make_rater("ann")
    preferred = answer(client, ann, lambda s: {"item_id": s["item_id"], "verdict": "preferred",
                                                "preferred_response_id": s["responses"][1]["id"]})
    tie = answer(client, ann, lambda s: {"item_id": s["item_id"], "verdict": "tie"})
    answer(client, ann, lambda s: {"item_id": s["item_id"], "verdict": "both_bad"})
    three = answer(client, ann, lambda s: {"item_id": s["item_id"], "verdict": "preferred",
                                            "preferred_response_id": s["responses"][2]["id"]})
    scored = answer(client, ann, lambda s: {"item_id": s["item_id"],
                                             "scores": {str(s["responses"][0]["id"]): 5}})
    return checkpoint, preferred, tie, three, scored


def test_preferences_export_pairs_with_provenance(client, admin, make_rater, db):
    checkpoint, preferred, tie, three, _ = rated_fixture(client, db, make_rater)
    rows = jsonl(client.get("/api/v1/export/preferences", headers=admin))
    # The preferred pair, then the 3-way item as two pairs; no tie, no both-bad.
    assert len(rows) == 3
    first = rows[0]
    assert first["prompt"].startswith("Prompt")
    assert first["chosen"] == preferred["responses"][1]["text"]
    assert first["rejected"] == preferred["responses"][0]["text"]
    assert first["chosen_sample_id"] == preferred["responses"][1]["id"]
    assert first["chosen_checkpoint_id"] == first["rejected_checkpoint_id"] == checkpoint.id
    assert first["rater"] == "ann" and first["item_id"] == preferred["item_id"] and not first["tie"]
    assert {"rating_id", "rater_id", "created_at"} <= set(first)
    chosen_three = {r["chosen"] for r in rows[1:]}
    assert chosen_three == {three["responses"][2]["text"]}
    assert {r["rejected"] for r in rows[1:]} == {three["responses"][0]["text"], three["responses"][1]["text"]}

    with_ties = jsonl(client.get("/api/v1/export/preferences", params={"include_ties": True},
                                 headers=admin))
    tied = [r for r in with_ties if r["tie"]]
    # A tie and a both-bad are both "neither is better" (as rounds train on them); the verdict tells them apart.
    assert len(with_ties) == 5 and [r["item_id"] for r in tied] == [tie["item_id"], tie["item_id"] + 1]
    assert [r["verdict"] for r in tied] == ["tie", "both_bad"] and rows[0]["verdict"] == "preferred"

    only_checkpoint = jsonl(client.get("/api/v1/export/preferences", headers=admin,
                                       params={"checkpoint_id": checkpoint.id}))
    assert [r["item_id"] for r in only_checkpoint] == [preferred["item_id"]]
    assert jsonl(client.get("/api/v1/export/preferences", params={"rater": "bob"}, headers=admin)) == []
    assert jsonl(client.get("/api/v1/export/preferences", headers=admin,
                            params={"since": "2999-01-01T00:00:00Z"})) == []


def test_scores_export(client, admin, make_rater, db):
    *_, scored = rated_fixture(client, db, make_rater)
    rows = jsonl(client.get("/api/v1/export/scores", headers=admin))
    assert len(rows) == 1
    row = rows[0]
    assert row["score"] == 5 and row["response"] == scored["responses"][0]["text"]
    assert row["sample_id"] == scored["responses"][0]["id"] and row["item_id"] == scored["item_id"]
    assert row["prompt"] == "Score 0" and row["rater"] == "ann"


def test_exports_are_for_admins(client, rater, admin):
    for path in ("/api/v1/export/preferences", "/api/v1/export/scores"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=rater).status_code == 403
        bad = client.get(path, headers=admin, params={"until": "2000-01-01", "since": "2001-01-01"})
        assert bad.status_code == 422 and bad.json()["field"] == "until"


def test_exports_read_in_batches_give_the_same_rows(client, admin, make_rater, db, monkeypatch):
    from app.feedback import export

    rated_fixture(client, db, make_rater)
    whole = {path: jsonl(client.get(path, params={"include_ties": True} if "pref" in path else {},
                                    headers=admin))
             for path in ("/api/v1/export/preferences", "/api/v1/export/scores")}
    monkeypatch.setattr(export, "BATCH", 1)
    for path, rows in whole.items():
        params = {"include_ties": True} if "pref" in path else {}
        assert jsonl(client.get(path, params=params, headers=admin)) == rows
