"""Bounded per-process caches: one kind of cache, and one switch that empties them all.

A long-lived worker keeps what it read (candidate indexes, titles, parsed interests) so that the chunks of a
send share it, but must not grow without end: every such cache is an `Lru` of a named size. Caches of what the
database holds are registered here, so that `clear_all()` forgets them together (a test whose rolled-back
rows come back with the same primary keys must not find the last test's index).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_registry: dict[str, Callable[[], object]] = {}


def register(name: str, clear: Callable[[], object]) -> None:
    """Have `clear_all()` call `clear` (a cache's own clear, or a functools cache's `cache_clear`)."""
    _registry[name] = clear


def clear_all() -> None:
    """Empty every registered cache of this process."""
    for clear in list(_registry.values()):
        clear()


class Lru(Generic[K, V]):
    """At most `maxsize` entries; past that, the least recently used goes first. Safe to share between threads.
    `get` answers None for a missing key, so no value is None.

    `registered=False` for a cache that needs no clearing with the others: one owned by an object that is itself
    cached (it goes with its owner), or one whose values never go stale."""

    def __init__(self, name: str, maxsize: int, *, registered: bool = True) -> None:
        self.name = name
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        if registered:
            register(name, self.clear)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The entries of `keys` this cache holds."""
        found: dict[K, V] = {}
        with self._lock:
            data = self._data
            for key in keys:
                value = data.get(key)
                if value is not None:
                    data.move_to_end(key)
                    found[key] = value
        return found

    def put(self, key: K, value: V) -> None:
        self.update({key: value})

    def update(self, entries: Mapping[K, V]) -> None:
        with self._lock:
            data = self._data
            data.update(entries)
            for key in entries:
                data.move_to_end(key)
            while len(data) > self.maxsize:
                data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<Lru {self.name!r}: {len(self)} of {self.maxsize}>"
