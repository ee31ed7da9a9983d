"""The shop's state: an in-memory stand-in for a database, and a mailer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol


class Mailer(Protocol):
    """Sends mail; the real one would talk to an SMTP server."""

    async def send(self, to: str, subject: str) -> None:
        """Send one message."""
        ...


@dataclass
class Outbox:
    """A mailer that keeps what it sends (the example's default)."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str) -> None:
        await asyncio.sleep(0)  # where a real mailer would wait for its server
        self.sent.append((to, subject))


class TillAlreadyClosed(Exception):
    """A till session cannot be closed twice."""


@dataclass(frozen=True)
class LedgerEntry:
    reference: str
    account: str
    debit_cents: int
    credit_cents: int


@dataclass
class Member:
    member_id: int
    name: str
    email: str
    loyalty_points: int = 0
    welcomed: bool = False


@dataclass
class Shop:
    """Everything the API and the modules share, besides the bus."""

    mailer: Mailer = field(default_factory=Outbox)
    ledger: list[LedgerEntry] = field(default_factory=list)
    articles: dict[str, str] = field(default_factory=dict)
    barcodes: dict[str, str] = field(default_factory=dict)
    barcode_images: dict[str, str] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    closed_tills: set[int] = field(default_factory=set)
    _next_member_id: int = 1

    def close_till(self, till_id: int) -> None:
        """Record that a till session was closed (the commit of a real database);
        ``TillAlreadyClosed`` if it was."""
        if till_id in self.closed_tills:
            raise TillAlreadyClosed(till_id)
        self.closed_tills.add(till_id)

    def new_member_id(self) -> int:
        member_id, self._next_member_id = self._next_member_id, self._next_member_id + 1
        return member_id
