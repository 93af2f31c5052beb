"""Accounts, passwords (argon2) and API tokens (stored as sha256, shown once)."""

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models import ApiToken, Role, User, utcnow

_hasher = PasswordHasher()
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
TOKEN_PREFIX = "tl_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(db: Session, name: str, *, admin: bool = False, password: str | None = None) -> User:
    if not NAME_PATTERN.match(name):
        raise InvalidInput("user names are 1-64 letters, digits or _ . @ -", field="name")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if db.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(
        name=name,
        role=Role.admin if admin else Role.rater,
        password_hash=hash_password(password) if password else None,
    )
    db.add(user)
    db.flush()
    return user


def get_user_by_name(db: Session, name: str) -> User:
    user = db.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def create_token(db: Session, user: User, name: str = "") -> str:
    """Make a token for the user; the plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:10], name=name))
    db.flush()
    return token


def revoke_token(db: Session, token_or_prefix: str) -> int:
    """Revoke a token by its full text or its shown prefix; returns how many were revoked."""
    tokens = db.scalars(
        select(ApiToken).where(
            (ApiToken.token_hash == hash_token(token_or_prefix)) | (ApiToken.prefix == token_or_prefix),
            ApiToken.revoked_at.is_(None),
        )
    ).all()
    for token in tokens:
        token.revoked_at = utcnow()
    db.flush()
    return len(tokens)


@dataclass(frozen=True)
class Caller:
    """The active user a request acts for, with what routes read of it. Read by one Core
    query per request: loading an ORM User cost as much again as the query itself."""

    id: int
    name: str
    role: Role


# Every API request makes one of these: built once with bound parameters, since building
# and cache-keying a query per request cost more than running it.
_CALLER = select(User.id, User.name, User.role).where(User.is_active.is_(True))
_CALLER_BY_TOKEN = (_CALLER.join(ApiToken, ApiToken.user_id == User.id)
                    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None)))
_CALLER_BY_ID = _CALLER.where(User.id == bindparam("user_id"))


def caller_for_token(db: Session, token: str) -> Caller | None:
    """The active user a live token belongs to."""
    row = db.connection().execute(_CALLER_BY_TOKEN, {"token_hash": hash_token(token)}).first()
    return Caller(*row) if row else None


def caller_by_id(db: Session, user_id: int) -> Caller | None:
    """The user of a browser session, if still active."""
    row = db.connection().execute(_CALLER_BY_ID, {"user_id": user_id}).first()
    return Caller(*row) if row else None
