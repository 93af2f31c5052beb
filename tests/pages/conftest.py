from tests.auth.web_client import client  # noqa: F401  (fixtures)
from tests.pages.browser import page, page_without_csp  # noqa: F401
