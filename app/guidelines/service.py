"""The rating guidelines: markdown revisions (the newest is current), rendered safely."""

from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Guideline

MAX_GUIDELINE_CHARS = 100_000
SAFE_SCHEMES = ("http://", "https://", "mailto:")

DEFAULT_GUIDELINES = """\
## How to rate

- Read the prompt first, then both responses in full.
- **A better / B better** when one response is clearly more helpful, correct and safe.
- **Tie** when they are equally good; **both bad** when neither is acceptable.
- Scores (1 = useless, 7 = excellent) are optional for comparisons, required for single responses.
- Skip (`S`) anything you cannot judge; it goes to another rater.
"""


def _safe_link(url: str) -> bool:
    """Web links, mail links and same-site paths only: no javascript:, data:, file: ..."""
    url = url.strip().lower()
    if url.startswith(("#", "/")) and not url.startswith("//"):
        return True
    return url.startswith(SAFE_SCHEMES)


# html=False: raw HTML in the source is shown as text, never passed through.
_markdown = MarkdownIt("commonmark", {"html": False})
_markdown.validateLink = _safe_link


def render_markdown(source: str) -> Markup:
    """HTML for guideline markdown; the only text the templates mark safe."""
    return Markup(_markdown.render(source))


def current_guideline(db: Session) -> Guideline | None:
    return db.scalar(select(Guideline).order_by(Guideline.created_at.desc(), Guideline.id.desc())
                     .limit(1))


def current_guideline_html(db: Session) -> Markup:
    current = current_guideline(db)
    return render_markdown(current.body if current else DEFAULT_GUIDELINES)


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
