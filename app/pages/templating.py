"""The Jinja2 environment every page renders with (autoescaping on for .html)."""

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.pages.display import render_model_text, show_control_chars

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC_DIR = ROOT / "static"

templates = Jinja2Templates(directory=ROOT / "templates")


@lru_cache
def static_url(path: str) -> str:
    """/static/<path>?v=<content hash>: a changed file is never served stale from a cache."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


# Every {{ expression }} shows control characters as visible symbols (our own Markup is left alone).
templates.env.finalize = show_control_chars
templates.env.filters["model_text"] = render_model_text
templates.env.globals["static_url"] = static_url
# Tidy output: block tags do not leave blank lines behind.
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
