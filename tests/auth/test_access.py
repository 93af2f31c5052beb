"""Who reaches what: anonymous visitors log in first, raters never reach admin pages,
and no form post counts without its CSRF token."""

import pytest

from tests.auth.web_client import PASSWORD, csrf_from, login
from tests.factories import make_items, make_user


@pytest.fixture
def rater_client(client, db):
    make_user(db, "rita", password=PASSWORD)
    db.commit()
    login(client, "rita")
    return client


@pytest.mark.parametrize("path", ["/", "/rate", "/guidelines", "/admin/guidelines"])
def test_anonymous_visitors_are_sent_to_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_anonymous_script_calls_get_401_with_the_login_url(client, db):
    response = client.get("/rate/panel", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.json()["login"].startswith("/login")


def test_raters_get_a_403_page_on_admin_urls(rater_client):
    page = rater_client.get("/admin/guidelines")
    assert page.status_code == 403
    assert "text/html" in page.headers["content-type"] and "admins only" in page.text
    token = csrf_from(rater_client.get("/rate").text)
    posted = rater_client.post("/admin/guidelines", data={"csrf_token": token, "body": "# mine"})
    assert posted.status_code == 403


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_posts_without_the_right_csrf_token_are_refused(rater_client, db, token):
    [item_id] = make_items(db, 1)
    page = rater_client.get("/rate")
    form = {"item_id": str(item_id), "choice": "tie", "action": "submit"}
    headers = {"X-CSRF-Token": token} if token else {}
    data = form | ({"csrf_token": token} if token else {})
    assert rater_client.post("/rate", data=data).status_code == 403
    answer = rater_client.post("/rate/answer", json=form | {"item_id": item_id}, headers=headers)
    assert answer.status_code == 403
    assert rater_client.post("/logout", data=data).status_code == 403
    # Still signed in, nothing stored.
    assert rater_client.get("/rate").status_code == 200
    assert "0</strong> rated today" in rater_client.get("/rate").text
    assert "form has expired" in rater_client.post("/rate", data=data).text
    assert csrf_from(page.text) != token


def test_the_login_form_needs_its_own_csrf_token(client, db):
    make_user(db, "rita", password=PASSWORD)
    db.commit()
    client.get("/login")
    response = client.post("/login", data={"name": "rita", "password": PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 403
    client.cookies.clear()
    response = client.post("/login", data={"name": "rita", "password": PASSWORD})
    assert response.status_code == 403
