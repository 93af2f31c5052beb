"""How user and model text is shown: control characters made visible, markdown rendered inert.

Two markdown readers, neither of which lets raw HTML through (it stays text).
Guidelines, written by admins: links to web, mail and same-site addresses.
What models write, shown to raters: lists, emphasis, code in monospace,
tables, but no links and no images (a sample must not make a rater's browser
fetch or open anything).
"""

import re

from markdown_it import MarkdownIt
from markupsafe import Markup

SAFE_SCHEMES = ("http://", "https://", "mailto:")

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


def _safe_link(url: str) -> bool:
    """Web links, mail links and same-site paths only: no javascript:, data:, file: ..."""
    url = url.strip().lower()
    if url.startswith(("#", "/")) and not url.startswith("//"):
        return True
    return url.startswith(SAFE_SCHEMES)


# html=False: raw HTML in the source is shown as text, never passed through.
_guidelines = MarkdownIt("commonmark", {"html": False})
_guidelines.validateLink = _safe_link
_model_text = MarkdownIt("commonmark", {"html": False}).enable("table").disable(["link", "image", "autolink"])


def render_guidelines(source: str) -> Markup:
    return Markup(_guidelines.render(source))


def render_model_text(source: str) -> Markup:
    """A response as the rater sees it: the only model text the templates mark safe."""
    return Markup(_model_text.render(show_control_chars(source)))
