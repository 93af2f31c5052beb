from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.types import Text, text_limits
from app.models import Selection
from app.prompts.sources import MAX_CANDIDATES, SourceSettings
from app.settings import get_settings

MAX_PROMPTS_PER_REQUEST = 1000
DEFAULT_SOURCE = SourceSettings()  # what a source without settings does


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Text = Field(**text_limits(get_settings().max_text_chars, required=True))


class PromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text | None = Field(None, description="The prompt; not blank, at most TUNELOOP_MAX_TEXT_CHARS "
                                                "characters. Or give messages.",
                              **text_limits(get_settings().max_text_chars, required=True))
    messages: list[Message] | None = Field(
        None, min_length=1, max_length=64,
        description="A conversation ending with a user turn, rendered by the model's chat template; "
                    "instead of text. Its last user turn is the prompt's text.")
    tags: list[Annotated[Text, Field(**text_limits(64))]] = Field(
        default_factory=list, description="Up to 64 characters each.")
    source: Text = Field("", description='Where it came from; default "api".', **text_limits(128))

    @model_validator(mode="after")
    def _text_or_messages(self) -> "PromptIn":
        if (self.text is None) == (self.messages is None):
            raise ValueError("give exactly one of text and messages")
        return self


class PromptsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[PromptIn] = Field(min_length=1, max_length=MAX_PROMPTS_PER_REQUEST)


class PromptIds(BaseModel):
    ids: list[int] = Field(description="The new prompts' ids, in the order they were sent.")


class SourceSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selection: Selection = Field(
        DEFAULT_SOURCE.selection,
        description='Of `candidates` samples per prompt, offer the pair that an ensemble of reward heads fitted '
                    'on the ratings so far disagrees on most ("uncertainty"), or its best and worst ("contrast"); '
                    'or two samples as drawn ("random").')
    random_share: float = Field(DEFAULT_SOURCE.random_share, ge=0, le=1,
                                description="share of training pairs drawn at random anyway")
    candidates: int = Field(DEFAULT_SOURCE.candidates, ge=2, le=MAX_CANDIDATES,
                            description="samples per prompt to choose a pair from")
    responses: Literal[1, 2] = Field(DEFAULT_SOURCE.responses,
                                     description="per training item: 2 to compare, 1 to score or rate with a "
                                                 "thumb up or down (then selection does not apply)")


class SourceOut(SourceSettingsIn):
    name: str
    prompts: int
    active_prompts: int
