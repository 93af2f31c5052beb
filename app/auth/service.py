"""Checking a name and password, in the same time whether or not the name exists."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import User
from app.users.service import hash_password, verify_password

# Verified against when the name is unknown, so response time does not reveal
# which account names exist.
_DUMMY_USER = User(name="", password_hash=hash_password("not a real password"))


def authenticate(db: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    user = db.scalar(select(User).where(User.name == name.strip())) if name else None
    if user is None or not user.password_hash:
        verify_password(_DUMMY_USER, password)
        return None
    if not verify_password(user, password) or not user.is_active:
        return None
    return user


def safe_next(target: str | None, default: str = "/rate") -> str:
    """Only same-site paths: a login link must never bounce a user to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\r\n\t\\"):
        return default
    return target
