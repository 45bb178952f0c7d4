"""Events between services: transactional outbox → Redis Streams (CloudEvents 1.0) → idempotent consumers.

- :func:`event_tables` adds the ``outbox`` and ``processed_messages`` tables to a service's metadata.
- :class:`Outbox` writes an event in the caller's transaction (the business change and the event
  commit together or not at all).
- :class:`OutboxRelay` publishes committed events to the producing service's stream.
- :class:`EventConsumer` reads streams in a consumer group, runs each handler once per event (the
  processed-message row commits with the handler's changes), retries failures with exponential
  backoff, reclaims messages of crashed consumers and parks poison messages in a dead-letter stream.
"""

from shared.events.consumer import EventConsumer, Handler
from shared.events.envelope import CloudEvent, stream_for
from shared.events.outbox import Outbox
from shared.events.relay import OutboxRelay
from shared.events.tables import EventTables, event_tables

__all__ = [
    "CloudEvent",
    "EventConsumer",
    "EventTables",
    "Handler",
    "Outbox",
    "OutboxRelay",
    "event_tables",
    "stream_for",
]
