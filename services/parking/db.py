"""The parking service's declarative base: its own metadata, so its own database."""

from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata
from shared.events import event_tables
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = new_metadata()


events = event_tables(Base.metadata)
idempotency_keys = idempotency_table(Base.metadata)
