from tests.auth.web_client import client  # noqa: F401  (fixture)
