from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.api.types import Text, text_limits
from app.settings import get_settings

MAX_PROMPTS_PER_REQUEST = 1000


class PromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="The prompt; not blank, at most TUNELOOP_MAX_TEXT_CHARS characters.",
                       **text_limits(get_settings().max_text_chars, required=True))
    tags: list[Annotated[Text, Field(**text_limits(64))]] = Field(
        default_factory=list, description="Up to 64 characters each.")
    source: Text = Field("", description='Where it came from; default "api".', **text_limits(128))


class PromptsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[PromptIn] = Field(min_length=1, max_length=MAX_PROMPTS_PER_REQUEST)


class PromptIds(BaseModel):
    ids: list[int] = Field(description="The new prompts' ids, in the order they were sent.")
