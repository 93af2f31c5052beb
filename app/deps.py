"""Dependency aliases shared by every route: the database session and the caller."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from app.auth.csrf import CSRF_HEADER, tokens_match
from app.auth.session_cookie import COOKIE_NAME, BrowserSession, decode_session
from app.db import session_scope
from app.models import Role, User
from app.users.service import user_for_token


def get_db() -> Iterator[Session]:
    """The one place routes commit: after the route returns, before the response is sent."""
    with session_scope() as session:
        yield session


# scope="function": the commit above runs before the response leaves, so a 2xx
# always means the data is stored.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


# Dependencies that touch no database are async: FastAPI runs them on the event
# loop instead of a thread hop each.
async def get_browser_session(request: Request) -> BrowserSession | None:
    return decode_session(request.cookies.get(COOKIE_NAME))


BrowserSessionDep = Annotated[BrowserSession | None, Depends(get_browser_session)]

# Methods that change nothing; a cookie-authenticated call with any other needs the CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_current_user(request: Request, db: SessionDep, browser: BrowserSessionDep) -> User:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = user_for_token(db, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API token",
                                headers={"WWW-Authenticate": "Bearer"})
    else:
        user = db.get(User, browser.user_id) if browser else None
        if user is None or not user.is_active:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in",
                                headers={"WWW-Authenticate": "Bearer"})
        # The browser sends the cookie on any site's request; only our own pages
        # can read the session's CSRF token and echo it in the header.
        if request.method not in SAFE_METHODS and not tokens_match(
                browser.csrf_token, request.headers.get(CSRF_HEADER)):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "missing or wrong CSRF token (send the X-CSRF-Token header)")
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_rater(user: CurrentUser) -> User:
    # Admins may rate too (they often calibrate the guidelines that way).
    return user


CurrentRater = Annotated[User, Depends(get_current_rater)]


async def get_current_admin(user: CurrentUser) -> User:
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]
