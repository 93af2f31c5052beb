"""Rater statistics: counts, median time per rating, agreement on overlapping items."""

from app.models import Item
from tests.admin.conftest import answer
from tests.factories import make_items, make_user


def test_counts_median_time_and_agreement(admin_client, db):
    ann, bob, cy = (make_user(db, name).id for name in ("ann", "bob", "cy"))
    first, second = make_items(db, 2, overlap=3)
    a1, _ = (r.sample_id for r in db.get(Item, first).responses)
    # Item 1: ann and bob prefer the same response, cy calls it a tie.
    answer(db, ann, first, "preferred", preferred=a1, time_spent_ms=4000)
    answer(db, bob, first, "preferred", preferred=a1, time_spent_ms=10000)
    answer(db, cy, first, "tie", time_spent_ms=2000)
    # Item 2: ann and bob both say "both bad"; cy never answers it.
    answer(db, ann, second, "both_bad", time_spent_ms=6000)
    answer(db, bob, second, "both_bad", time_spent_ms=12000)

    page = admin_client.get("/admin/raters").text
    rows = {name: page.split(f'<th scope="row">{name}')[1].split("</tr>")[0] for name in ("ann", "bob", "cy")}
    # ann: 2 ratings, median 5 s, agrees with bob twice and disagrees with cy once -> 2/3.
    assert ">2</td>" in rows["ann"] and "5.0 s" in rows["ann"] and "67%" in rows["ann"]
    assert "11.0 s" in rows["bob"] and "67%" in rows["bob"]
    assert "2.0 s" in rows["cy"] and ">0%</td>" in rows["cy"]
    # Overall: 4 pairs (3 on item 1, 1 on item 2), 2 agree.
    assert "2 of 4 rater pairs gave the same answer" in page and ">50%<" in page

