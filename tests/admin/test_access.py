"""Who sees the dashboard: admins do, raters get a 403 page, anonymous visitors sign in first."""

import pytest

from tests.admin.conftest import page_csrf
from tests.auth.web_client import login
from tests.factories import make_user

PAGES = ["/admin", "/admin/checkpoints", "/admin/raters"]
POSTS = ["/admin/rounds", "/admin/rounds/1/cancel", "/admin/checkpoints/1/promote"]


@pytest.mark.parametrize("url", PAGES)
def test_admin_sees_each_page_with_the_dashboard_nav(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert 'href="/admin/checkpoints"' in response.text and 'href="/admin/raters"' in response.text
    assert 'aria-current="page"' in response.text


def test_rating_page_links_to_the_dashboard_for_admins_only(admin_client, client, db):
    assert 'href="/admin"' in admin_client.get("/rate").text
    client.post("/logout", data={"csrf_token": page_csrf(client, "/rate")})
    make_user(db, "rita", password="correct horse battery")
    db.commit()
    login(client, "rita")
    assert 'href="/admin"' not in client.get("/rate").text


@pytest.mark.parametrize("url", PAGES + ["/admin/rounds/1"])
def test_rater_gets_a_403_page(rater_client, url):
    response = rater_client.get(url)
    assert response.status_code == 403
    assert "admins only" in response.text


@pytest.mark.parametrize("url", PAGES + ["/admin/rounds/1"])
def test_anonymous_visitor_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=%2Fadmin")


@pytest.mark.parametrize("url", POSTS)
def test_posts_without_csrf_token_are_refused(admin_client, url):
    response = admin_client.post(url, data={"algorithm": "dpo"})
    assert response.status_code == 403
    assert "expired or came from another site" in response.text


@pytest.mark.parametrize("url", POSTS)
def test_rater_cannot_post_to_the_dashboard(rater_client, url):
    response = rater_client.post(url, data={"csrf_token": page_csrf(rater_client, "/rate")})
    assert response.status_code == 403


def test_unknown_round_is_a_404_page(admin_client):
    response = admin_client.get("/admin/rounds/999")
    assert response.status_code == 404
    assert "no round 999" in response.text and "<h1>Not found</h1>" in response.text
