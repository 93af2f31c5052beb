from pydantic import BaseModel, ConfigDict, Field

from app.api.types import Text

MAX_PROMPTS_PER_REQUEST = 5000


class PromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="The prompt; non-empty, at most TUNELOOP_MAX_TEXT_CHARS characters.")
    tags: list[Text] = Field(default_factory=list, description="Up to 64 characters each.")
    source: Text = Field("", description='Where it came from (at most 128 characters); default "api".')


class PromptsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[PromptIn] = Field(min_length=1, max_length=MAX_PROMPTS_PER_REQUEST)


class PromptIds(BaseModel):
    ids: list[int] = Field(description="The new prompts' ids, in the order they were sent.")
