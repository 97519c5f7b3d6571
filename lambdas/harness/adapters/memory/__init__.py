"""The stores of the memory table (DynamoDB, the stack's CMK, TTL), one module per kind of record."""

from __future__ import annotations

from harness.adapters.memory.actor_items import ActorItems
from harness.adapters.memory.conversations import ConversationStore
from harness.adapters.memory.events import EventLog
from harness.adapters.memory.invocations import InvocationStore
from harness.adapters.memory.sessions import SessionStore
from harness.adapters.memory.table import MemoryTable
from harness.adapters.memory.tool_calls import ToolCallStore
from harness.stores import MemoryStores


def memory_stores(table_name: str) -> MemoryStores:
    table = MemoryTable(table_name)
    return MemoryStores(
        sessions=SessionStore(table),
        conversations=ConversationStore(table),
        invocations=InvocationStore(table),
        tool_calls=ToolCallStore(table),
        events=EventLog(table),
    )


def actor_items(table_name: str) -> ActorItems:
    return ActorItems(MemoryTable(table_name))


__all__ = [
    "ActorItems",
    "ConversationStore",
    "EventLog",
    "InvocationStore",
    "SessionStore",
    "ToolCallStore",
    "actor_items",
    "memory_stores",
]
