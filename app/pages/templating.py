"""The Jinja2 environment every page renders with (autoescaping on for .html)."""

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC_DIR = ROOT / "static"

templates = Jinja2Templates(directory=ROOT / "templates")


@lru_cache
def static_url(path: str) -> str:
    """/static/<path>?v=<content hash>: a changed file is never served stale from a cache."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


# Control characters in user text would reach the page raw: invisible, or (bidi
# overrides) reordering what a rater reads. They are shown as visible symbols.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␀ ␇ ␛ ...
    return "\u2421" if code == 0x7F else f"[U+{code:04X}]"


def show_control_chars(value):
    """Every {{ expression }} passes here before autoescaping (our own Markup is left alone)."""
    if isinstance(value, str) and not isinstance(value, Markup) and CONTROL_CHARS.search(value):
        return CONTROL_CHARS.sub(_visible, value)
    return value


templates.env.finalize = show_control_chars
templates.env.globals["static_url"] = static_url
# Tidy output: block tags do not leave blank lines behind.
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
