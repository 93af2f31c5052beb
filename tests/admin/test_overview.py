"""The overview: current checkpoint, what the pool holds, and user text shown as text."""

from app.checkpoints.service import add_checkpoint
from app.feedback.items import create_item
from app.models import CheckpointStatus, ItemPurpose, Prompt, Sample
from tests.admin.conftest import answer
from tests.factories import make_items, make_user


def test_pool_status_by_purpose_and_source(admin_client, db, lineage):
    make_items(db, 3)  # source "test", purpose train
    prompt = Prompt(text="From a client", source="api")
    db.add_all([prompt, Prompt(text="Unused", source="api"), Prompt(text="Off", source="api", active=False)])
    db.flush()
    sample = Sample(prompt_id=prompt.id, text="client response", source="vendor-7")
    db.add(sample)
    db.flush()
    create_item(db, prompt_id=prompt.id, sample_ids=[sample.id], purpose=ItemPurpose.client)
    db.commit()
    rita = make_user(db, "rita").id
    answer(db, rita, 1, "tie", time_spent_ms=1500)

    page = admin_client.get("/admin").text
    purposes = page.split('id="open-by-purpose"')[1].split("</dl>")[0]
    assert "<dt>train</dt><dd>2</dd>" in purposes and "<dt>client</dt><dd>1</dd>" in purposes
    assert "<dt>progress</dt><dd>0</dd>" in purposes
    assert "<dt>items answered</dt><dd>1</dd>" in page and "<dt>prompts active</dt><dd>5</dd>" in page
    assert "items closed unanswered</dt><dd>0</dd>" in page
    # One tie: no decisive comparison yet, of the minimum a round needs.
    assert '<dd id="usable-comparisons">0 <span class="muted">of 32 a round needs</span></dd>' in page
    assert "<dt>new since last round</dt><dd>1</dd>" in page
    sources = page.split('id="sources-heading"')[1].split("</table>")[0]
    assert '<tr><td>api</td><td class="num">1</td>' in sources
    assert '<tr><td>test</td><td class="num">2</td>' in sources
    assert 'v1</a></p>' in page and "base-model" in page


def test_user_supplied_text_is_escaped(admin_client, db):
    add_checkpoint(db, path="x", name="<img src=x onerror=alert(1)>", parent_id=None,
                   status=CheckpointStatus.current)
    db.add(Prompt(text="p", source="<script>alert(2)</script>"))
    db.commit()
    for url in ("/admin", "/admin/checkpoints"):
        page = admin_client.get(url).text
        assert "<img src=x" not in page and "<script>alert" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in admin_client.get("/admin").text


def test_no_checkpoint_yet_disables_the_launch_button(admin_client, db):
    page = admin_client.get("/admin").text
    assert "No current checkpoint" in page and 'class="primary" disabled' in page
