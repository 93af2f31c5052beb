"""Every route of the app, walked as anonymous, rater and admin.

ACCESS names who may use each route; a route missing from it fails the walk, so a
new route cannot ship without someone deciding who may call it. Anonymous callers
get 401 on the API and a redirect to /login on pages; raters get 403 on admin
routes; admins are never refused. Login, CSRF and cookie flags are tested in
tests/auth and tests/admin/test_access.py; this file checks the whole map.
"""

import re

import pytest
from fastapi.routing import iter_route_contexts

from app.main import create_app

PUBLIC, SIGNED_IN, ADMIN = "public", "signed in", "admin"

ACCESS = {
    # FastAPI's own documentation and the health check: readable by anyone.
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    # Raters (and admins, who may rate).
    ("GET", "/"): SIGNED_IN,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/rate"): SIGNED_IN,
    ("POST", "/rate"): SIGNED_IN,
    ("POST", "/rate/answer"): SIGNED_IN,
    ("GET", "/rate/panel"): SIGNED_IN,
    ("GET", "/guidelines"): SIGNED_IN,
    ("GET", "/api/v1/items/next"): SIGNED_IN,
    ("POST", "/api/v1/ratings"): SIGNED_IN,
    ("POST", "/api/v1/ratings/bulk"): SIGNED_IN,
    ("POST", "/api/v1/items/leases"): SIGNED_IN,
    # Admins only.
    ("POST", "/api/v1/prompts"): ADMIN,
    ("POST", "/api/v1/items"): ADMIN,
    ("PUT", "/api/v1/items/{item_id}/gold"): ADMIN,
    ("GET", "/api/v1/prompt-sources"): ADMIN,
    ("PUT", "/api/v1/prompt-sources/{name}"): ADMIN,
    ("GET", "/api/v1/ratings"): ADMIN,
    ("GET", "/api/v1/export/preferences"): ADMIN,
    ("GET", "/api/v1/export/scores"): ADMIN,
    ("GET", "/api/v1/export/kto"): ADMIN,
    ("GET", "/api/v1/checkpoints"): ADMIN,
    ("POST", "/api/v1/checkpoints/{checkpoint_id}/promote"): ADMIN,
    ("POST", "/api/v1/checkpoints/{checkpoint_id}/reject"): ADMIN,
    ("POST", "/api/v1/rounds"): ADMIN,
    ("GET", "/api/v1/rounds"): ADMIN,
    ("GET", "/api/v1/rounds/{round_id}"): ADMIN,
    ("GET", "/api/v1/rounds/{round_id}/metrics"): ADMIN,
    ("POST", "/api/v1/rounds/{round_id}/cancel"): ADMIN,
    ("GET", "/api/v1/raters"): ADMIN,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/guidelines"): ADMIN,
    ("POST", "/admin/guidelines"): ADMIN,
    ("POST", "/admin/rounds"): ADMIN,
    ("GET", "/admin/rounds/{round_id}"): ADMIN,
    ("POST", "/admin/rounds/{round_id}/cancel"): ADMIN,
    ("GET", "/admin/checkpoints"): ADMIN,
    ("POST", "/admin/checkpoints/{checkpoint_id}/promote"): ADMIN,
    ("POST", "/admin/checkpoints/{checkpoint_id}/reject"): ADMIN,
    ("GET", "/admin/raters"): ADMIN,
    ("GET", "/metrics"): ADMIN,
    ("POST", "/admin/raters/import"): ADMIN,
}


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route, included routers flattened; HEAD goes with GET."""
    found = []
    for route in iter_route_contexts(create_app().routes):
        for method in sorted(route.methods or {"GET"}):  # a mount (/static) has no methods
            if method != "HEAD":
                found.append((method, route.path))
    return found


ROUTES = app_routes()


def test_every_route_has_a_declared_audience():
    undeclared = sorted(set(ROUTES) - set(ACCESS))
    assert not undeclared, f"routes nobody decided the audience of: {undeclared}"
    assert not set(ACCESS) - set(ROUTES), "ACCESS names routes that no longer exist"


def concrete(path: str, ids: dict[str, int]) -> str:
    if path == "/static":
        return "/static/rate.js"
    names = re.findall(r"{(\w+)}", path)
    unknown = [n for n in names if n not in ids]
    assert not unknown, f"no real id for path parameter(s) {unknown} of {path}"
    return path.format(**{n: ids[n] for n in names})


def call(client, method: str, path: str, caller, *, api: bool, use_cookie: bool = False):
    client.cookies.clear()
    if api:
        headers = caller.session() | {"X-CSRF-Token": caller.csrf or ""} if use_cookie else caller.bearer()
        return client.request(method, path, headers=headers, json={} if method != "GET" else None)
    data = {"csrf_token": caller.csrf} if method == "POST" and caller.csrf else None
    return client.request(method, path, headers=caller.session(), data=data)


def sent_to_login(response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_each_route_admits_exactly_its_audience(app_client, callers, real_ids, method, path):
    audience = ACCESS[(method, path)]
    # /metrics answers as the API does (a scraper has a token, not a browser session).
    url, api = concrete(path, real_ids), path.startswith("/api/") or path == "/metrics"
    credentials = [False, True] if api else [False]  # the API also takes the browser cookie
    for use_cookie in credentials:
        seen = {role: call(app_client, method, url, caller, api=api, use_cookie=use_cookie)
                for role, caller in callers.items()}
        context = f"{method} {url} ({'cookie' if use_cookie else 'token'})"
        for role, response in seen.items():
            assert response.status_code < 500, (context, role, response.text[:300])
        anonymous, rater, admin = seen["anonymous"], seen["rater"], seen["admin"]
        if audience == PUBLIC:
            assert anonymous.status_code != 401 and not sent_to_login(anonymous), context
            continue
        if api:
            assert anonymous.status_code == 401, (context, anonymous.text)
            assert anonymous.headers["www-authenticate"] == "Bearer"
        else:
            assert sent_to_login(anonymous), (context, anonymous.status_code)
        if audience == ADMIN:
            assert rater.status_code == 403, (context, rater.status_code, rater.text[:300])
        else:
            assert rater.status_code not in (401, 403) and not sent_to_login(rater), (
                context, rater.status_code, rater.text[:300])
        assert admin.status_code not in (401, 403) and not sent_to_login(admin), (
            context, admin.status_code, admin.text[:300])


@pytest.mark.parametrize("method, path", [r for r in ROUTES if ACCESS[r] == ADMIN and r[0] != "GET"])
def test_raters_change_nothing_on_admin_posts(app_client, callers, real_ids, db, method, path):
    """A refused post leaves the data as it was (the round stays queued, the checkpoint ready)."""
    from app.models import Checkpoint, TrainingRound

    url = concrete(path, real_ids)
    response = call(app_client, method, url, callers["rater"], api=path.startswith("/api/"))
    assert response.status_code == 403
    db.expire_all()
    assert db.get(TrainingRound, real_ids["round_id"]).status == "queued"
    assert db.get(Checkpoint, real_ids["checkpoint_id"]).status == "ready"
