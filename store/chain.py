"""Signed on-chain transactions and the nonces they use.

One row per payout holds the transaction signed for it, stored before it is broadcast. A
redelivery, a restart or the reconciler finds the row and broadcasts the same bytes again; no
code path signs a second transaction for a payment that has one.

Nonces: a wallet's next nonce lives in `chain_wallets`. Allocating one, signing with it and
storing the signed transaction happen in one database transaction that holds the wallet's row
(SELECT ... FOR UPDATE on PostgreSQL, the single writer lock on SQLite). Threads and processes
sharing one hot wallet therefore take nonces one after the other, each exactly once, and a
crash before the commit leaves neither the nonce taken nor a transaction that could be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from common.clock import Clock
from store.database import reading
from store.outage import StoreAccess
from store.schema import chain_transactions, chain_wallets


@dataclass(frozen=True)
class SignedTransaction:
    tx_hash: str
    raw_tx: bytes = field(repr=False)


@dataclass(frozen=True)
class StoredTransaction:
    payment_id: str
    chain_id: int
    address: str
    nonce: int
    tx_hash: str
    raw_tx: bytes = field(repr=False)
    #: When it was signed and stored (ms since the epoch).
    created_ms: int = 0


class ChainTransactions(StoreAccess):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        super().__init__(engine)
        self._clock = clock

    def find(self, payment_id: str) -> StoredTransaction | None:
        with reading(self._engine) as connection:
            return self._find(connection, payment_id)

    def sign_and_store(
        self,
        payment_id: str,
        *,
        chain_id: int,
        address: str,
        nonce_floor: int,
        sign: Callable[[int], SignedTransaction],
    ) -> StoredTransaction:
        """The payment's transaction: the one stored before, or one signed now with the
        wallet's next nonce (at least `nonce_floor`, the node's count of the wallet's
        transactions, so a nonce used outside paymq is skipped)."""
        try:
            return self._sign_and_store(payment_id, chain_id, address, nonce_floor, sign)
        except IntegrityError:
            # Another worker stored this payment's transaction first (the claim and the
            # wallet lock should have prevented it; the primary key makes sure).
            found = self.find(payment_id)
            if found is None:
                raise
            return found

    def _sign_and_store(
        self,
        payment_id: str,
        chain_id: int,
        address: str,
        nonce_floor: int,
        sign: Callable[[int], SignedTransaction],
    ) -> StoredTransaction:
        with self._engine.begin() as connection:
            next_nonce = self._lock_next_nonce(connection, chain_id, address)
            # Read under the wallet's lock: a concurrent delivery of this payment that signed
            # first has committed by now.
            existing = self._find(connection, payment_id)
            if existing is not None:
                return existing
            nonce = max(next_nonce, nonce_floor)
            signed = sign(nonce)
            now_ms = self._clock.now_ms()
            connection.execute(
                chain_transactions.insert().values(
                    payment_id=payment_id,
                    chain_id=chain_id,
                    address=address,
                    nonce=nonce,
                    tx_hash=signed.tx_hash,
                    raw_tx=signed.raw_tx,
                    created_ms=now_ms,
                )
            )
            connection.execute(
                update(chain_wallets)
                .where(chain_wallets.c.chain_id == chain_id)
                .where(chain_wallets.c.address == address)
                .values(next_nonce=nonce + 1)
            )
            return StoredTransaction(
                payment_id, chain_id, address, nonce, signed.tx_hash, signed.raw_tx, now_ms
            )

    def close(self) -> None:
        self._engine.dispose()

    def wallet_transactions(self, chain_id: int, address: str) -> list[StoredTransaction]:
        """Every transaction signed for a wallet, by nonce (for operators and tests)."""
        query = (
            select(chain_transactions)
            .where(chain_transactions.c.chain_id == chain_id)
            .where(chain_transactions.c.address == address)
            .order_by(chain_transactions.c.nonce)
        )
        with reading(self._engine) as connection:
            return [_stored(row) for row in connection.execute(query).mappings()]

    def next_nonce(self, chain_id: int, address: str) -> int | None:
        """The nonce the wallet's next payout will take, if it has signed any."""
        query = (
            select(chain_wallets.c.next_nonce)
            .where(chain_wallets.c.chain_id == chain_id)
            .where(chain_wallets.c.address == address)
        )
        with reading(self._engine) as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else int(found)

    def signed_since(self, chain_id: int, address: str, nonce: int) -> list[StoredTransaction]:
        """The wallet's transactions with this nonce or a later one, by nonce."""
        query = (
            select(chain_transactions)
            .where(chain_transactions.c.chain_id == chain_id)
            .where(chain_transactions.c.address == address)
            .where(chain_transactions.c.nonce >= nonce)
            .order_by(chain_transactions.c.nonce)
        )
        with reading(self._engine) as connection:
            return [_stored(row) for row in connection.execute(query).mappings()]

    def _lock_next_nonce(self, connection: Connection, chain_id: int, address: str) -> int:
        dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            dialect_insert(chain_wallets)
            .values(chain_id=chain_id, address=address, next_nonce=0)
            .on_conflict_do_nothing()
        )
        query = (
            select(chain_wallets.c.next_nonce)
            .where(chain_wallets.c.chain_id == chain_id)
            .where(chain_wallets.c.address == address)
            .with_for_update()
        )
        return int(connection.execute(query).scalar_one())

    @staticmethod
    def _find(connection: Connection, payment_id: str) -> StoredTransaction | None:
        query = select(chain_transactions).where(chain_transactions.c.payment_id == payment_id)
        row = connection.execute(query).mappings().first()
        return None if row is None else _stored(row)


def _stored(row: object) -> StoredTransaction:
    mapping = dict(row)  # type: ignore[call-overload]
    return StoredTransaction(
        payment_id=mapping["payment_id"],
        chain_id=int(mapping["chain_id"]),
        address=mapping["address"],
        nonce=int(mapping["nonce"]),
        tx_hash=mapping["tx_hash"],
        raw_tx=bytes(mapping["raw_tx"]),
        created_ms=int(mapping["created_ms"]),
    )
