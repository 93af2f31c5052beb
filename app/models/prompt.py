import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class Prompt(CreatedAt, Base):
    __tablename__ = "prompt"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The prompt's text; for a conversation, its last user turn (what raters read as "the prompt").
    text: Mapped[str] = mapped_column(sa.Text)
    # A conversation: [{"role": "system" | "user" | "assistant", "content": ...}, ...] ending with
    # a user turn, rendered by the model's chat template; None for a plain prompt.
    messages: Mapped[list | None]
    # Where it came from (a file name, "api", a prompt set); pools are topped up per source.
    source: Mapped[str] = mapped_column(sa.String(128), default="", index=True)
    tags: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
