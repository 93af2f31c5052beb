"""Prompts: validation, bulk insert, and import from JSONL or CSV files.

A prompt is plain text, or a conversation: `{"messages": [{"role", "content"}, ...]}`
with roles system, user and assistant, ending with a user turn. A conversation's
text is its last user turn: what raters read as "the prompt" and rules score.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.errors import InvalidInput, InvalidRows
from app.models import Prompt
from app.prompts.sources import MAX_SOURCE_CHARS
from app.settings import get_settings

ROLES = ("system", "user", "assistant")
MAX_TURNS = 64


@dataclass
class NewPrompt:
    text: str
    tags: list[str] = field(default_factory=list)
    source: str = ""
    messages: list[dict[str, str]] | None = None


def check_text(text: object, what: str = "text") -> str:
    """The rules every stored text obeys, whichever way it arrives."""
    if text is None:
        raise InvalidInput(f"{what} is missing", field=what)
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a string", field=what)
    if not text.strip():
        raise InvalidInput(f"{what} is empty", field=what)
    if "\x00" in text:
        raise InvalidInput(f"{what} contains a NUL character", field=what)
    limit = get_settings().max_text_chars
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters", field=what)
    return text


def check_messages(raw: object, what: str = "messages") -> list[dict[str, str]]:
    """A conversation as the chat templates take it; it must end with the user's turn."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{what} must be a non-empty list of {{role, content}} turns", field=what)
    if len(raw) > MAX_TURNS:
        raise InvalidInput(f"{what} has more than {MAX_TURNS} turns", field=what)
    turns = []
    for index, turn in enumerate(raw):
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            raise InvalidInput(f"{what}[{index}] must be an object with exactly 'role' and 'content'", field=what)
        if turn["role"] not in ROLES:
            raise InvalidInput(f"{what}[{index}].role must be one of {', '.join(ROLES)}", field=what)
        turns.append({"role": turn["role"], "content": check_text(turn["content"], f"{what}[{index}].content")})
    if turns[-1]["role"] != "user":
        raise InvalidInput(f"{what} must end with a user turn (the model answers it)", field=what)
    return turns


def last_user_turn(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"]


def check_prompt(raw: object) -> NewPrompt:
    if isinstance(raw, str):
        return NewPrompt(text=check_text(raw))
    if not isinstance(raw, dict):
        raise InvalidInput("expected an object with a 'text' or 'messages' field, or a string")
    unknown = set(raw) - {"text", "messages", "tags", "source"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    tags = raw.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(";") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise InvalidInput("tags must be a list of strings of at most 64 characters", field="tags")
    source = raw.get("source") or ""
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS:
        raise InvalidInput(f"source must be a string of at most {MAX_SOURCE_CHARS} characters", field="source")
    if raw.get("messages") is not None:
        if raw.get("text") is not None:
            raise InvalidInput("give text or messages, not both", field="messages")
        messages = check_messages(raw["messages"])
        return NewPrompt(text=last_user_turn(messages), tags=tags, source=source, messages=messages)
    return NewPrompt(text=check_text(raw.get("text")), tags=tags, source=source)


def add_prompts(db: Session, prompts: list[NewPrompt], *, active: bool = True) -> list[int]:
    # active=False: stored for items a client brought, never offered to generation.
    if not prompts:
        return []
    rows = [{"text": p.text, "messages": p.messages, "tags": p.tags, "source": p.source, "active": active}
            for p in prompts]
    result = db.execute(insert(Prompt).returning(Prompt.id, sort_by_parameter_order=True), rows)
    return [row.id for row in result]


def parse_prompt_file(path: Path, default_source: str | None = None) -> list[NewPrompt]:
    """Parse a whole file before anything is stored; errors name the line."""
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise InvalidInput(f"{path}: expected a .jsonl or .csv file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"{path}: {error.strerror}") from error
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}:{number}: not valid UTF-8") from None
    text = raw.decode("utf-8").removeprefix("\ufeff")
    source = default_source if default_source is not None else path.name
    parse = _parse_jsonl if path.suffix.lower() == ".jsonl" else _parse_csv
    prompts = []
    for number, record in parse(path, text):
        try:
            prompt = check_prompt(record)
        except InvalidInput as error:
            raise InvalidInput(f"{path}:{number}: {error}") from None
        prompt.source = prompt.source or source
        prompts.append(prompt)
    if not prompts:
        raise InvalidInput(f"{path}: no prompts in the file")
    return prompts


def _parse_jsonl(path: Path, text: str):
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{path}:{number}: invalid JSON ({error.msg})") from None


def _parse_csv(path: Path, text: str):
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise InvalidInput(f"{path}:1: the CSV header needs a 'text' column")
    try:
        for row in reader:
            if None in row:
                raise InvalidInput(f"{path}:{reader.line_num}: more fields than the header has")
            yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}
    except csv.Error as error:
        raise InvalidInput(f"{path}:{reader.line_num}: {error}") from None


def add_checked_prompts(db: Session, raw: list[object], default_source: str = "") -> list[int]:
    """Check every prompt, then store all of them, or none: errors name each bad row."""
    prompts, failed = [], []
    for index, record in enumerate(raw):
        try:
            prompt = check_prompt(record)
        except InvalidInput as error:
            failed.append(InvalidRows.row(index, error))
            continue
        prompt.source = prompt.source or default_source
        prompts.append(prompt)
    if failed:
        raise InvalidRows(failed)
    return add_prompts(db, prompts)
