"""One Azure table with our conventions: typed errors, ETag conditions, large values split across properties.

Every repository in this package talks to storage through `Table`; azure-core exceptions are
translated here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from storage.errors import ConcurrencyConflict, NotFound, StorageUnavailable, ValueTooLarge

if TYPE_CHECKING:
    from azure.data.tables import TableClient

Entity = dict[str, Any]
T = TypeVar("T")

# A property holds at most 64 KiB; a whole entity at most 1 MiB (including keys and overhead).
CHUNK_BYTES = 64 * 1024
MAX_VALUE_BYTES = 15 * CHUNK_BYTES  # leaves room for keys and the other properties of the row
_TRANSACTION_LIMIT = 100  # operations in one entity-group transaction


@contextmanager
def translated_errors(table: str, key: str) -> Iterator[None]:
    """Turn azure-core exceptions into this package's errors."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ResourceNotFoundError as error:
        raise NotFound(table, key) from error
    except ResourceExistsError as error:
        raise ConcurrencyConflict(table, key, "already exists") from error
    except ResourceModifiedError as error:
        raise ConcurrencyConflict(table, key) from error
    except (ServiceRequestError, ServiceResponseError, ClientAuthenticationError) as error:
        raise StorageUnavailable(f"table {table}: {type(error).__name__}: {error}") from error
    except HttpResponseError as error:
        # The service counts a row's size its own way (with property names and encoding); a row our
        # byte count let through can still be too large for it: say so as the same error.
        if getattr(error, "error_code", None) == "EntityTooLarge":
            raise ValueTooLarge(f"table {table}: row {key} is larger than the 1 MiB a row may hold") from error
        raise


def pack_bytes(name: str, data: bytes) -> Entity:
    """Properties holding ``data`` in 64 KiB binary chunks: ``{name}_0``, ``{name}_1``, ... and ``{name}_chunks``."""
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"{name} is {len(data)} bytes; a table row holds at most {MAX_VALUE_BYTES}")
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    packed: Entity = {f"{name}_{i}": chunk for i, chunk in enumerate(chunks)}
    packed[f"{name}_chunks"] = len(chunks)
    return packed


def unpack_bytes(entity: Mapping[str, Any], name: str) -> bytes:
    """The bytes written by `pack_bytes`."""
    count = int(entity.get(f"{name}_chunks", 0))
    return b"".join(bytes(entity.get(f"{name}_{i}") or b"") for i in range(count))


class Table:
    """A table client with this project's verbs; keys are passed already encoded."""

    def __init__(self, client: TableClient, name: str) -> None:
        self._client = client
        self.name = name

    def get(self, partition: str, row: str) -> tuple[Entity, str]:
        """The entity and its ETag; raises NotFound."""
        with translated_errors(self.name, f"{partition}/{row}"):
            entity = self._client.get_entity(partition, row)
        return dict(entity), entity.metadata["etag"]

    def create(self, entity: Entity) -> str:
        """Insert; raises ConcurrencyConflict if the row exists. Returns the new ETag."""
        with translated_errors(self.name, _key_of(entity)):
            return self._client.create_entity(entity)["etag"]

    def create_each(self, entities: Sequence[Entity]) -> list[bool]:
        """Insert each entity whose row does not exist yet: True where inserted, False where the
        row existed (what `create` signals with ConcurrencyConflict). The entities share one
        partition and are sent as entity-group transactions of up to 100: one call for the lot,
        plus one more per row that existed (Azure refuses the whole transaction and names the
        row). Rows are independent: each is inserted or found, as if created one by one."""
        from azure.data.tables import TableTransactionError

        inserted = [False] * len(entities)
        remaining = list(range(len(entities)))
        while remaining:
            chunk = remaining[:_TRANSACTION_LIMIT]
            if len(chunk) == 1:
                inserted[chunk[0]] = self._created(entities[chunk[0]])
                del remaining[:1]
                continue
            try:
                with translated_errors(self.name, f"({len(chunk)} inserts)"):
                    self._client.submit_transaction([("create", entities[i]) for i in chunk])
            except TableTransactionError as refused:
                index = refused.index
                if refused.error_code == "EntityAlreadyExists" and str(refused.message).startswith(f"{index}:"):
                    remaining.remove(chunk[index])  # that row exists; the rest go again
                    continue
                for i in chunk:  # any other refusal (say, a row twice): one by one, as before
                    inserted[i] = self._created(entities[i])
                del remaining[: len(chunk)]
                continue
            for i in chunk:
                inserted[i] = True
            del remaining[: len(chunk)]
        return inserted

    def _created(self, entity: Entity) -> bool:
        try:
            self.create(entity)
        except ConcurrencyConflict:
            return False
        return True

    def replace(self, entity: Entity, *, etag: str) -> str:
        """Replace the row only if its ETag is still ``etag``; raises ConcurrencyConflict or NotFound."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        with translated_errors(self.name, _key_of(entity)):
            result = self._client.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        return result["etag"]

    def update(
        self, partition: str, row: str, change: Callable[[Entity | None], tuple[Entity | None, T]], *, attempts: int = 8
    ) -> tuple[T, str | None]:
        """Read-modify-write under optimistic concurrency, for rows several instances write.

        ``change`` gets the row as read (None when there is none) and returns the entity to write
        (None: write nothing) and the caller's result. The entity is created when there was no row
        and replaces it on its ETag otherwise; when another writer got in between (created,
        replaced or deleted the row), the row is read again and ``change`` asked again. Returns the
        result and the row's ETag now (None: no row). Raises ConcurrencyConflict after
        ``attempts`` lost races."""
        for _ in range(attempts):
            try:
                current, etag = self.get(partition, row)
            except NotFound:
                current, etag = None, None
            entity, result = change(current)
            if entity is None:
                return result, etag
            try:
                if etag is None:
                    return result, self.create(entity)
                return result, self.replace(entity, etag=etag)
            except (ConcurrencyConflict, NotFound):
                continue  # written, created or deleted since we read it: read again
        raise ConcurrencyConflict(self.name, f"{partition}/{row}", "kept changing while being updated")

    def upsert(self, entity: Entity) -> str:
        """Insert or replace unconditionally (last writer wins): only for rows no two instances race on."""
        from azure.data.tables import UpdateMode

        with translated_errors(self.name, _key_of(entity)):
            return self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)["etag"]

    def delete(self, partition: str, row: str, *, etag: str | None = None) -> None:
        """Delete; succeeds when already gone (so a delete cannot tell who won a race: use `replace` for that).
        With ``etag``, raises ConcurrencyConflict if the row changed."""
        from azure.core import MatchConditions

        options: dict[str, Any] = {}
        if etag is not None:
            options = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        with translated_errors(self.name, f"{partition}/{row}"):
            self._client.delete_entity(partition, row, **options)

    def query(
        self, filter: str, *, parameters: Mapping[str, Any] | None = None, select: list[str] | None = None
    ) -> Iterator[tuple[Entity, str]]:
        """Entities matching an OData filter with ``@name`` parameters (never formatted strings)."""
        with translated_errors(self.name, filter):
            for entity in self._client.query_entities(filter, parameters=dict(parameters or {}), select=select):
                yield dict(entity), entity.metadata["etag"]

    def partition(self, partition: str, *, select: list[str] | None = None) -> Iterator[tuple[Entity, str]]:
        return self.query("PartitionKey eq @pk", parameters={"pk": partition}, select=select)

    def count(self, partition: str) -> int:
        return sum(1 for _ in self.partition(partition, select=["RowKey"]))


def _key_of(entity: Mapping[str, Any]) -> str:
    return f"{entity.get('PartitionKey')}/{entity.get('RowKey')}"
