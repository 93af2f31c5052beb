"""The rating guidelines: markdown revisions (the newest is current), rendered safely."""

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Guideline
from app.pages.display import render_guidelines

MAX_GUIDELINE_CHARS = 100_000

DEFAULT_GUIDELINES = """\
## How to rate

- Read the prompt first, then both responses in full.
- **A better / B better** when one response is clearly more helpful, correct and safe.
- **Tie** when they are equally good; **both bad** when neither is acceptable.
- Scores (1 = useless, 7 = excellent) are optional for comparisons, required for single responses.
- Skip (`S`) anything you cannot judge; it goes to another rater.
"""


def current_guideline(db: Session) -> Guideline | None:
    return db.scalar(select(Guideline).order_by(Guideline.created_at.desc(), Guideline.id.desc())
                     .limit(1))


def current_guideline_html(db: Session) -> Markup:
    current = current_guideline(db)
    return render_guidelines(current.body if current else DEFAULT_GUIDELINES)


def save_guideline(db: Session, body: str, user_id: int) -> Guideline:
    """A new revision; earlier ones are kept as history."""
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise InvalidInput("the guidelines cannot be empty", field="body")
    if len(body) > MAX_GUIDELINE_CHARS or "\x00" in body:
        raise InvalidInput(f"the guidelines must be at most {MAX_GUIDELINE_CHARS} characters, no NUL",
                           field="body")
    guideline = Guideline(body=body, updated_by_id=user_id)
    db.add(guideline)
    db.flush()
    return guideline
