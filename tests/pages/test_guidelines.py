"""Guidelines: admins edit markdown, raters read it rendered, nothing in it runs."""

import pytest
from sqlalchemy import select

from app.models import Guideline
from tests.auth.web_client import PASSWORD, csrf_from, login
from tests.factories import make_user

HOSTILE = """## Be kind
<script>window.__pwned = 1</script> <img src=x onerror="alert(1)">
[click](javascript:alert(1)) [home](/rate) [docs](https://example.org/guide)
"""


@pytest.fixture
def admin_client(client, db):
    make_user(db, "ada", admin=True, password=PASSWORD)
    db.commit()
    login(client, "ada")
    return client


def save(client, body: str):
    token = csrf_from(client.get("/admin/guidelines").text)
    return client.post("/admin/guidelines", data={"csrf_token": token, "body": body})


def test_admin_saves_a_revision_and_raters_see_it_rendered_safely(admin_client, db):
    response = save(admin_client, HOSTILE)
    assert response.status_code == 303
    assert "Saved." in admin_client.get(response.headers["location"]).text
    assert db.scalar(select(Guideline.body)).startswith("## Be kind")
    for path in ("/guidelines", "/rate", "/admin/guidelines"):
        page = admin_client.get(path).text
        assert "<h2>Be kind</h2>" in page
        assert "&lt;script&gt;window.__pwned" in page and "<script>window" not in page
        assert "<img src=x" not in page and 'href="javascript:' not in page
        assert '<a href="/rate">home</a>' in page
        assert '<a href="https://example.org/guide">docs</a>' in page


def test_the_newest_revision_is_current(admin_client, db):
    save(admin_client, "first")
    save(admin_client, "second version")
    assert "second version" in admin_client.get("/guidelines").text
    assert len(db.scalars(select(Guideline)).all()) == 2


def test_empty_guidelines_are_refused(admin_client, db):
    response = save(admin_client, "   ")
    assert response.status_code == 422 and "cannot be empty" in response.text


def test_raters_read_but_cannot_edit(client, db):
    make_user(db, "rita", password=PASSWORD)
    db.commit()
    login(client, "rita")
    page = client.get("/guidelines")
    assert page.status_code == 200 and "How to rate" in page.text  # the default text
    assert client.get("/admin/guidelines").status_code == 403
