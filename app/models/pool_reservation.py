from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt


class PoolReservation(CreatedAt, Base):
    """Items a generation worker is sampling for one prompt source and has not written yet
    (worker.pool_reservation): other workers count them as if open, so they do not sample
    the same deficit."""

    __tablename__ = "pool_reservation"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(128), index=True)
    items: Mapped[int]
    # After this the reservation no longer counts, whether or not its worker lives.
    expires_at: Mapped[datetime]
