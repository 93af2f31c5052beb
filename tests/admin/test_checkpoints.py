"""The checkpoint table: lineage, metrics, human win rate; promotion and rollback."""

from sqlalchemy import select

from app.feedback.items import create_item
from app.models import Checkpoint, CheckpointStatus, ItemPurpose, Prompt, Sample, TrainingRound
from app.users.service import create_token
from tests.admin.conftest import answer, page_csrf
from tests.api.conftest import bearer
from tests.factories import make_user


def promote(client, checkpoint_id: int):
    return client.post(f"/admin/checkpoints/{checkpoint_id}/promote",
                       data={"csrf_token": page_csrf(client, "/admin/checkpoints")})


def current_version(db) -> int:
    db.expire_all()
    return db.scalar(select(Checkpoint.version).where(Checkpoint.status == CheckpointStatus.current))


def test_promote_then_roll_back(admin_client, db, lineage):
    base, child = lineage
    page = admin_client.get("/admin/checkpoints").text
    assert f'action="/admin/checkpoints/{child.id}/promote"' in page and "Promote</button>" in page
    response = promote(admin_client, child.id)
    assert response.status_code == 303 and response.headers["location"] == "/admin/checkpoints?promoted=2"
    assert "v2 is now current" in admin_client.get(response.headers["location"]).text
    assert current_version(db) == 2
    page = admin_client.get("/admin/checkpoints").text
    assert "Roll back to v1</button>" in page
    assert promote(admin_client, base.id).status_code == 303
    assert current_version(db) == 1
    # The overview shows the checkpoint that is current now.
    assert '<a href="/admin/checkpoints#checkpoint-1">v1</a>' in admin_client.get("/admin").text


def test_a_checkpoint_still_training_cannot_be_promoted(admin_client, db, lineage):
    lineage[1].status = CheckpointStatus.training
    db.commit()
    response = promote(admin_client, lineage[1].id)
    assert response.status_code == 409 and "is training, not ready" in response.text
    assert current_version(db) == 1


def test_unknown_checkpoint_is_a_404_page(admin_client, db, lineage):
    assert promote(admin_client, 999).status_code == 404


def test_table_shows_lineage_metrics_round_and_human_win_rate(admin_client, db, lineage):
    base, child = lineage
    db.add(TrainingRound(algorithm="dpo", config={}, status="succeeded", base_checkpoint_id=base.id,
                         produced_checkpoint_id=child.id))
    # Three blind comparisons child vs parent: the child wins two, one tie -> 5/6.
    raters = [make_user(db, f"r{i}").id for i in range(3)]
    for user_id, verdict in zip(raters, ["preferred", "preferred", "tie"], strict=True):
        prompt = Prompt(text="Compare", source="test")
        db.add(prompt)
        db.flush()
        new, old = Sample(prompt_id=prompt.id, checkpoint_id=child.id, text="new"), \
            Sample(prompt_id=prompt.id, checkpoint_id=base.id, text="old")
        db.add_all([new, old])
        db.flush()
        item = create_item(db, prompt_id=prompt.id, sample_ids=[new.id, old.id], purpose=ItemPurpose.progress)
        db.commit()
        answer(db, user_id, item.id, verdict, preferred=new.id if verdict == "preferred" else None)
    page = admin_client.get("/admin/checkpoints").text
    row = page.split(f'id="checkpoint-{child.id}"')[1].split("</tr>")[0]
    assert f'<a href="#checkpoint-{base.id}">v1</a>' in row
    assert '<a href="/admin/rounds/1">#1</a>' in row
    assert "0.75" in row and "0.52" in row  # RM eval accuracy, DPO loss
    assert '83% <span class="muted">(3)</span>' in row
    assert "+1." in row and "[" in row  # Bradley-Terry strength with its interval
    assert "length-controlled" in row  # answers of equal length: within a few points of the plain fit


def test_a_candidate_is_rejected_or_promoted_by_hand_with_the_reason_kept(admin_client, db, lineage):
    base, child = lineage
    child.status = CheckpointStatus.candidate
    db.commit()
    page = admin_client.get("/admin/checkpoints").text
    assert f'action="/admin/checkpoints/{child.id}/reject"' in page and "badge-candidate" in page
    response = admin_client.post(f"/admin/checkpoints/{child.id}/reject",
                                 data={"csrf_token": page_csrf(admin_client, "/admin/checkpoints")})
    assert response.status_code == 303 and response.headers["location"] == "/admin/checkpoints?rejected=2"
    db.expire_all()
    assert db.get(Checkpoint, child.id).status == "rejected"
    assert db.get(Checkpoint, child.id).status_reason == "rejected by hand by ada"
    page = admin_client.get("/admin/checkpoints").text
    assert "Promote anyway</button>" in page and "rejected by hand by ada" in page
    # The evidence is there; the admin overrides.
    assert promote(admin_client, child.id).status_code == 303
    assert current_version(db) == 2
    db.expire_all()
    assert db.get(Checkpoint, child.id).status_reason == "promoted by hand by ada"
    # The current checkpoint cannot be rejected.
    response = admin_client.post(f"/admin/checkpoints/{child.id}/reject",
                                 data={"csrf_token": page_csrf(admin_client, "/admin/checkpoints")})
    assert response.status_code == 409 and "promote another one first" in response.text


def test_the_api_shows_statuses_reasons_and_a_candidates_review(client, db, lineage):
    base, child = lineage
    child.status = CheckpointStatus.candidate
    headers = bearer(create_token(db, make_user(db, "root", admin=True)))
    db.commit()
    rita = make_user(db, "rita").id
    db.commit()
    for i, verdict in enumerate(["a", "a", "b", "tie"]):
        prompt = Prompt(text=f"Review {i}", source="t")
        db.add(prompt)
        db.flush()
        new, old = Sample(prompt_id=prompt.id, checkpoint_id=child.id, text="n"), Sample(
            prompt_id=prompt.id, checkpoint_id=base.id, text="o")
        db.add_all([new, old])
        db.flush()
        item = create_item(db, prompt_id=prompt.id, sample_ids=[new.id, old.id], purpose=ItemPurpose.progress)
        db.commit()
        answer(db, rita, item.id, "tie" if verdict == "tie" else "preferred",
               preferred={"a": new.id, "b": old.id}.get(verdict))
    views = {c["id"]: c for c in client.get("/api/v1/checkpoints", headers=headers).json()}
    assert views[base.id]["status"] == "current" and views[base.id]["review"] is None
    review = views[child.id]["review"]
    assert views[child.id]["status"] == "candidate"
    assert (review["wins"], review["decisive"], review["ties"], review["needed"]) == (2, 3, 1, 17)
    assert review["against_id"] == base.id and review["interval"][0] < 0.5 < review["interval"][1]
    rejected = client.post(f"/api/v1/checkpoints/{child.id}/reject", headers=headers)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["status_reason"] == "rejected by hand by root"


def test_checkpoints_in_an_object_store_are_listed_and_promoted_alike(s3_store, admin_client, db, lineage):
    """The pages read checkpoints from the database alone: with TUNELOOP_CHECKPOINT_DIR an s3:// URL
    the web side starts, lists and promotes without reaching the store."""
    assert f'action="/admin/checkpoints/{lineage[1].id}/promote"' in admin_client.get("/admin/checkpoints").text
    assert promote(admin_client, lineage[1].id).status_code == 303
    assert current_version(db) == 2
