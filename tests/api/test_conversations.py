"""Conversations as prompts: POST /prompts, POST /items, the prompt file import, and what raters see."""

import pytest
from sqlalchemy import func, select

from app.errors import InvalidInput
from app.models import Prompt
from app.prompts.service import parse_prompt_file
from tests.auth.web_client import login
from tests.factories import make_user

CHAT = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is DNS?"},
        {"role": "assistant", "content": "A phone book for the <b>internet</b>."},
        {"role": "user", "content": "And a resolver?"}]


def test_a_conversation_is_a_prompt_whose_text_is_its_last_user_turn(client, admin, db):
    response = client.post("/api/v1/prompts", json={"prompts": [{"messages": CHAT, "tags": ["dns"]},
                                                                {"text": "Plain"}]}, headers=admin)
    assert response.status_code == 201, response.text
    chat, plain = (db.get(Prompt, i) for i in response.json()["ids"])
    assert chat.messages == CHAT and chat.text == "And a resolver?" and chat.tags == ["dns"]
    assert plain.messages is None and plain.text == "Plain"


def test_a_conversation_must_end_with_the_users_turn_and_use_known_roles(client, admin, db):
    for messages, says in ((CHAT[:3], "must end with a user turn"),
                           ([{"role": "tool", "content": "x"}], "role"),
                           ([], "at least 1"),
                           ([{"role": "user", "content": "   "}], "empty")):
        response = client.post("/api/v1/prompts", json={"prompts": [{"messages": messages}]}, headers=admin)
        assert response.status_code == 422 and says in response.text, (messages, response.text)
    both = client.post("/api/v1/prompts", json={"prompts": [{"text": "a", "messages": CHAT}]}, headers=admin)
    assert both.status_code == 422 and "exactly one of text and messages" in both.text
    assert db.scalar(select(func.count()).select_from(Prompt)) == 0


def test_raters_get_the_whole_conversation_and_see_its_turns_escaped(client, admin, db):
    body = {"items": [{"messages": CHAT, "responses": [{"text": "It finds addresses."}, {"text": "No idea."}]}]}
    assert client.post("/api/v1/items", json=body, headers=admin).status_code == 201
    make_user(db, "rita", password="correct horse battery")
    db.commit()
    login(client, "rita")
    shown = client.get("/api/v1/items/next").json()
    assert shown["prompt"] == "And a resolver?" and shown["messages"] == CHAT
    page = client.get("/rate").text
    conversation = page.split('data-testid="conversation"')[1].split("</section>")[0]
    assert conversation.count('class="turn ') == 3
    assert "turn-system" in conversation and "turn-assistant" in conversation
    assert "&lt;b&gt;internet&lt;/b&gt;" in conversation and "<b>internet" not in page
    assert "Last message" in page


def test_the_prompt_file_import_takes_conversations(tmp_path, db):
    path = tmp_path / "chats.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "Hi"}]}\n{"text": "Plain"}\n'
                    '{"messages": [{"role": "assistant", "content": "Hello"}]}\n')
    with pytest.raises(InvalidInput, match="chats.jsonl:3: messages must end with a user turn"):
        parse_prompt_file(path)
    path.write_text('{"messages": [{"role": "user", "content": "Hi"}]}\n{"text": "Plain"}\n')
    first, second = parse_prompt_file(path)
    assert first.messages == [{"role": "user", "content": "Hi"}] and first.text == "Hi" and second.messages is None
