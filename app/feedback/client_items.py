"""Items a REST client brings: its own prompts and responses, rated like any other.

Responses are stored as samples with no checkpoint and the client's source
label. A prompt sent as text becomes an inactive prompt: raters see it, but the
generation worker never samples it.
"""

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, InvalidRows, NotFound, TuneloopError
from app.feedback.items import MAX_SOURCE_CHARS, check_overlap, create_item
from app.feedback.schemas import ItemIn
from app.models import ItemPurpose, Prompt, Sample
from app.prompts.service import NewPrompt, add_prompts, check_messages, check_text, last_user_turn
from app.settings import get_settings


def _check_item(item: ItemIn, known_prompts: set[int], default_overlap: int) -> None:
    check_overlap(item.overlap if item.overlap is not None else default_overlap)
    if item.prompt is not None:
        check_text(item.prompt, "prompt")
    elif item.messages is not None:
        check_messages([m.model_dump() for m in item.messages])
    elif item.prompt_id not in known_prompts:
        raise NotFound(f"no prompt {item.prompt_id}")
    for response in item.responses:
        check_text(response.text, "responses.text")
        if len(response.source) > MAX_SOURCE_CHARS:
            raise InvalidInput(f"source must be at most {MAX_SOURCE_CHARS} characters",
                               field="responses.source")


def create_client_items(db: Session, items: list[ItemIn], source: str = "api") -> list[int]:
    """Check every item, then store all of them (prompts, samples, items), or none."""
    wanted = {i.prompt_id for i in items if i.prompt_id is not None}
    known = set(db.scalars(select(Prompt.id).where(Prompt.id.in_(wanted)))) if wanted else set()
    overlap = get_settings().default_overlap
    failed = []
    for index, item in enumerate(items):
        try:
            _check_item(item, known, overlap)
        except TuneloopError as error:
            failed.append(InvalidRows.row(index, error))
    if failed:
        raise InvalidRows(failed)

    new_prompts = iter(add_prompts(db, [_new_prompt(i, source) for i in items if i.prompt_id is None],
                                   active=False))
    prompt_ids = [i.prompt_id if i.prompt_id is not None else next(new_prompts) for i in items]
    sample_rows = [{"prompt_id": prompt_id, "checkpoint_id": None, "text": r.text,
                    "source": r.source, "generation": {}}
                   for prompt_id, item in zip(prompt_ids, items) for r in item.responses]
    sample_ids = iter(db.scalars(insert(Sample).returning(Sample.id, sort_by_parameter_order=True),
                                 sample_rows).all())
    created = [create_item(db, prompt_id=prompt_id, sample_ids=[next(sample_ids) for _ in item.responses],
                           purpose=ItemPurpose.client,
                           overlap=item.overlap if item.overlap is not None else overlap)
               for prompt_id, item in zip(prompt_ids, items)]
    db.flush()
    return [item.id for item in created]


def _new_prompt(item: ItemIn, source: str) -> NewPrompt:
    if item.messages is None:
        return NewPrompt(text=item.prompt, source=source)
    messages = [m.model_dump() for m in item.messages]
    return NewPrompt(text=last_user_turn(messages), source=source, messages=messages)
