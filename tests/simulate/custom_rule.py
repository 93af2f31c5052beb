"""A custom rule for `--rule tests.simulate.custom_rule:mentions_a_cat`."""


def mentions_a_cat(prompt: str, response: str) -> bool:
    """prefers answers that mention a cat"""
    return "cat" in response.lower()
