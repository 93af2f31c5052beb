"""Dependency aliases shared by every route: the database session and the caller."""

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from anyio import CancelScope
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.csrf import CSRF_HEADER, tokens_match
from app.auth.session_cookie import COOKIE_NAME, BrowserSession, decode_session
from app.db import end_session, get_sessionmaker
from app.models import Role
from app.users.service import Caller, caller_by_id, caller_for_token


async def get_db() -> AsyncIterator[Session]:
    """The one place routes commit: after the route returns, before the response is sent.

    Async: making a session does no I/O (it connects on first use, in the route's thread),
    so only its end needs a thread, one hop per request instead of two. Shielded, so a
    client that hangs up mid-request still gets its transaction rolled back and its
    connection returned to the pool."""
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        with CancelScope(shield=True):
            await run_in_threadpool(partial(end_session, session, commit=False))
        raise
    with CancelScope(shield=True):
        await run_in_threadpool(partial(end_session, session, commit=True))


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


def get_current_user(request: Request, db: SessionDep, browser: BrowserSessionDep) -> Caller:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = caller_for_token(db, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API token",
                                headers={"WWW-Authenticate": "Bearer"})
    else:
        user = caller_by_id(db, browser.user_id) if browser else None
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in",
                                headers={"WWW-Authenticate": "Bearer"})
        # The browser sends the cookie on any site's request; only our own pages
        # can read the session's CSRF token and echo it in the header.
        if request.method not in SAFE_METHODS and not tokens_match(
                browser.csrf_token, request.headers.get(CSRF_HEADER)):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "missing or wrong CSRF token (send the X-CSRF-Token header)")
    return user


CurrentUser = Annotated[Caller, Depends(get_current_user)]


async def get_current_rater(user: CurrentUser) -> Caller:
    # Admins may rate too (they often calibrate the guidelines that way).
    return user


CurrentRater = Annotated[Caller, Depends(get_current_rater)]


async def get_current_admin(user: CurrentUser) -> Caller:
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return user


CurrentAdmin = Annotated[Caller, Depends(get_current_admin)]
