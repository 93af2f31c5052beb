"""Raters in headless Chromium: keyboard only, answers checked in the database."""

import pytest
from sqlalchemy import select

from app.feedback.items import create_item
from app.models import Guideline, ItemPurpose, Lease, Prompt, Rating, Sample
from tests.factories import make_user
from tests.pages.browser import log_in, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "correct horse battery"

PAIRS = [
    ("How do I undo my last git commit but keep the changes?",
     "Run `git reset --soft HEAD~1`.\n\nYour commit is undone and its changes stay staged, "
     "ready to edit and commit again.",
     "Delete the .git folder and clone the repository again."),
    ("Write a haiku about autumn rain.",
     "Cold rain on the roof\nred leaves drifting in gutters\nthe kettle begins",
     "Autumn rain is wet.\nIt falls on the ground a lot.\nThe end of the poem."),
    ("What is the capital of Australia?", "Sydney.", "Melbourne, probably."),
]


def add_item(db, prompt: str, *responses: str) -> int:
    row = Prompt(text=prompt, source="browser-test", tags=[])
    db.add(row)
    db.flush()
    samples = [Sample(prompt_id=row.id, text=text, generation={}) for text in responses]
    db.add_all(samples)
    db.flush()
    item = create_item(db, prompt_id=row.id, sample_ids=[s.id for s in samples],
                       purpose=ItemPurpose.train)
    db.commit()
    return item.id


def sides(page) -> tuple[int, int | None]:
    a = page.locator('#rate-form input[name="side_a"]').get_attribute("value")
    b = page.locator('#rate-form input[name="side_b"]')
    return int(a), int(b.get_attribute("value")) if b.count() else None


def submit_and_wait(page, key: str = "Enter") -> None:
    answered = int(page.locator("#rate-panel").get_attribute("data-answered") or 0)
    page.keyboard.press(key)
    # A locator, not wait_for_function: the page's CSP forbids eval.
    page.locator(f'#rate-panel[data-answered="{answered + 1}"]').wait_for(state="attached")


def test_compare_items_rated_with_the_keyboard_only(page, db):
    make_user(db, "rita", password=PASSWORD)
    db.commit()
    ids = [add_item(db, *pair) for pair in PAIRS]
    page.goto("/login")
    screenshot(page, "login.png")
    log_in(page, "rita", PASSWORD)

    seen = [sides(page)]
    for key in ["1", "a", "6", "b", "3", "c"]:
        page.keyboard.press(key)
    page.keyboard.type("Keeps the changes, as asked")
    page.keyboard.press("Escape")
    screenshot(page, "rate.png")
    submit_and_wait(page)
    assert page.locator("#rate-notice").inner_text() == "Saved."

    seen.append(sides(page))
    page.keyboard.press("2")
    submit_and_wait(page)
    seen.append(sides(page))
    page.keyboard.press("3")
    page.keyboard.press("4")  # changed my mind: both bad
    submit_and_wait(page)

    assert page.locator("#empty-state").is_visible()
    assert page.get_by_test_id("rated-today").inner_text() == "3"
    screenshot(page, "rate-empty.png")
    ratings = {r.item_id: r for r in db.scalars(select(Rating))}
    assert sorted(ratings) == ids
    first, second, third = (ratings[i] for i in ids)
    assert (first.verdict, first.preferred_sample_id) == ("preferred", seen[0][0])
    assert first.scores == {str(seen[0][0]): 6, str(seen[0][1]): 3}
    assert first.comment == "Keeps the changes, as asked"
    assert (second.verdict, second.preferred_sample_id) == ("preferred", seen[1][1])
    assert (third.verdict, third.preferred_sample_id) == ("both_bad", None)
    assert all(r.time_spent_ms is not None for r in ratings.values())
    assert page.script_errors == []


def test_score_items_skip_and_guidelines_from_the_keyboard(page, db):
    make_user(db, "sam", password=PASSWORD)
    db.add(Guideline(body="## Scoring\n\n7 means you would ship it as is."))
    db.commit()
    first = add_item(db, "Explain recursion to a ten-year-old.",
                     "Recursion is when something is defined using a smaller copy of itself, "
                     "like Russian dolls: to open all the dolls, you open one doll and then "
                     "do the same with the doll inside, until the smallest one.")
    skipped = add_item(db, "Summarise the French Revolution in one line.", "It happened.")
    last = add_item(db, "Name a prime number above 10.", "11")
    thumbed = add_item(db, "Is the sky green?", "Yes, always.")
    log_in(page, "sam", PASSWORD)

    page.keyboard.press("6")
    screenshot(page, "rate-score.png")
    submit_and_wait(page)
    submit_and_wait(page, "s")
    page.keyboard.press("g")
    dialog = page.locator("#guidelines-dialog")
    assert dialog.is_visible() and "7 means you would ship it" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    page.keyboard.press("9")  # not a score: ignored
    page.keyboard.press("2")
    submit_and_wait(page)
    page.keyboard.press("d")  # a thumb instead of a score
    screenshot(page, "rate-thumb.png")
    submit_and_wait(page)

    scores = {r.item_id: r.scores for r in db.scalars(select(Rating))}
    assert set(scores) == {first, last, thumbed} and scores[thumbed] == {}
    assert db.scalar(select(Rating.thumb).where(Rating.item_id == thumbed)) == "down"
    assert list(scores[first].values()) == [6] and list(scores[last].values()) == [2]
    assert db.scalar(select(Lease.skipped_at).where(Lease.item_id == skipped)) is not None
    assert page.script_errors == []


def test_a_double_enter_stores_one_rating(page, db):
    make_user(db, "dora", password=PASSWORD)
    db.commit()
    for pair in PAIRS[:2]:
        add_item(db, *pair)
    log_in(page, "dora", PASSWORD)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.locator('#rate-panel[data-answered="1"]').wait_for(state="attached")
    page.wait_for_timeout(300)
    assert len(db.scalars(select(Rating)).all()) == 1


SCRIPT = "<script>window.__pwned = 1; alert('script')</script>"
IMG = "<img src=x onerror=\"window.__pwned = 2; alert('img')\">"


def test_hostile_text_is_shown_literally_and_never_runs(page_without_csp, db):
    page = page_without_csp
    make_user(db, "eve", password=PASSWORD)
    db.add(Guideline(body=f"Rules {SCRIPT} {IMG} [x](javascript:alert('link'))"))
    db.commit()
    for n in range(2):  # the second arrives through the JS swap, not a page load
        add_item(db, f"{SCRIPT} prompt {n}", f"{IMG} left", f"</div>{SCRIPT} right")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, "eve", PASSWORD)
    for n in range(2):
        assert page.get_by_test_id("prompt").inner_text() == f"{SCRIPT} prompt {n}"
        texts = {page.get_by_test_id("response-a").inner_text(),
                 page.get_by_test_id("response-b").inner_text()}
        assert texts == {f"{IMG} left", f"</div>{SCRIPT} right"}
        page.keyboard.press("3")
        page.keyboard.press("c")
        page.keyboard.type(IMG)
        submit_and_wait(page)
    page.keyboard.press("g")
    assert SCRIPT in page.locator("#guidelines-dialog").inner_text()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == [] and page.script_errors == []
    assert {r.comment for r in db.scalars(select(Rating))} == {IMG}


def test_an_answer_survives_a_new_login_in_another_tab(page, db):
    make_user(db, "tess", password=PASSWORD)
    db.commit()
    for pair in PAIRS[:2]:
        add_item(db, *pair)
    log_in(page, "tess", PASSWORD)
    other = page.context.new_page()
    other.goto("/rate")
    other.get_by_role("button", name="Log out").click()
    log_in(other, "tess", PASSWORD)  # a new session cookie with a new CSRF token
    page.keyboard.press("2")
    submit_and_wait(page)
    assert page.locator("#rate-notice").inner_text() == "Saved."
    assert len(db.scalars(select(Rating)).all()) == 1


def test_a_conversation_and_markdown_answers_side_by_side(page, db):
    make_user(db, "rita", password=PASSWORD)
    messages = [{"role": "system", "content": "You are a concise coding assistant."},
                {"role": "user", "content": "How do I list files in Python?"},
                {"role": "assistant", "content": "Use `os.listdir(path)`."},
                {"role": "user", "content": "And recursively, with their sizes?"}]
    row = Prompt(text=messages[-1]["content"], messages=messages, source="browser-test", tags=[])
    db.add(row)
    db.flush()
    answers = ["Use `pathlib`:\n\n```python\nfrom pathlib import Path\n\nfor p in Path('.').rglob('*'):\n"
               "    if p.is_file():\n        print(p, p.stat().st_size)\n```\n\n- `rglob('*')` walks every folder\n"
               "- `stat().st_size` is in bytes",
               "Call **os.walk** and add up sizes. <img src=x onerror=alert(1)> See [docs](https://docs.python.org)."]
    samples = [Sample(prompt_id=row.id, text=text, generation={}) for text in answers]
    db.add_all(samples)
    db.flush()
    create_item(db, prompt_id=row.id, sample_ids=[s.id for s in samples], purpose=ItemPurpose.train)
    db.commit()
    log_in(page, "rita", PASSWORD)

    turns = page.locator('[data-testid="conversation"] .turn')
    assert turns.count() == 3 and "concise coding assistant" in turns.nth(0).inner_text()
    assert page.locator('[data-testid="prompt"]').inner_text() == "And recursively, with their sizes?"
    code = page.locator(".response pre code")
    assert code.count() == 1 and "rglob" in code.inner_text()
    assert code.evaluate("el => getComputedStyle(el).fontFamily").lower().find("mono") >= 0
    # Raw HTML in an answer is text; links are text too.
    assert page.locator(".response img").count() == 0 and page.locator(".response a").count() == 0
    assert "<img src=x" in page.locator(".response", has_text="os.walk").inner_text()
    screenshot(page, "rate-conversation.png")
    assert page.script_errors == []
