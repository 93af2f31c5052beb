import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class Prompt(CreatedAt, Base):
    __tablename__ = "prompt"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)
    # Where it came from (a file name, "api", a prompt set); pools are topped up per source.
    source: Mapped[str] = mapped_column(sa.String(128), default="", index=True)
    tags: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
