"""Onboarding a team: accounts from a CSV (name, role), all or none, each with a new API token.

The file is read whole and checked before anything is stored; an error names
its line. The tokens are returned once (the CLI prints them, the admin page
shows them) and only their hashes are kept.
"""

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Role, User
from app.users.service import NAME_PATTERN, create_token, create_user

TOKEN_NAME = "import"


@dataclass(frozen=True)
class NewUser:
    line: int
    name: str
    role: Role


def parse_users(text: str, origin: str = "the file") -> list[NewUser]:
    """`name,role` rows under a header with a `name` column (`role`: rater, the default, or admin)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    if not reader.fieldnames or "name" not in [f.strip() for f in reader.fieldnames]:
        raise InvalidInput(f"{origin}:1: the CSV header needs a 'name' column (and optionally 'role')")
    users, seen = [], set()
    try:
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            line = reader.line_num
            if not any(row.values()):
                continue
            name, role = row.get("name", ""), (row.get("role") or Role.rater.value).lower()
            if not NAME_PATTERN.match(name):
                raise InvalidInput(f"{origin}:{line}: {name!r} is not a user name "
                                   "(1-64 letters, digits or _ . @ -)")
            if role not in {r.value for r in Role}:
                raise InvalidInput(f"{origin}:{line}: role {role!r} is neither 'rater' nor 'admin'")
            if name in seen:
                raise InvalidInput(f"{origin}:{line}: {name!r} appears twice in the file")
            seen.add(name)
            users.append(NewUser(line, name, Role(role)))
    except csv.Error as error:
        raise InvalidInput(f"{origin}:{reader.line_num}: {error}") from None
    if not users:
        raise InvalidInput(f"{origin}: no users in the file")
    return users


def import_users(db: Session, users: list[NewUser], origin: str = "the file") -> list[tuple[str, str]]:
    """Create every account with a token, or none (the caller's transaction); (name, token) pairs."""
    existing = set(db.scalars(select(User.name).where(User.name.in_([u.name for u in users]))))
    if existing:
        first = min((u for u in users if u.name in existing), key=lambda u: u.line)
        raise InvalidInput(f"{origin}:{first.line}: user {first.name!r} already exists; nothing was created")
    return [(u.name, create_token(db, create_user(db, u.name, admin=u.role == Role.admin), name=TOKEN_NAME))
            for u in users]
