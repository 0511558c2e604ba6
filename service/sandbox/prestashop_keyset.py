"""Sorted indexes of the shop's tables, for the listings ps2doli sends (keyset pages, id batches).

The webservice simulator's generic listing reads every row of a table per request (scope, every filter, then
a sort of what matched): O(n) per page of 100, so O(n^2) for a whole keyset crawl of a large shop. The shapes
ps2doli really sends (``service/prestashop/client.py``) only need a contiguous run of one sorted index:

- ``filter[id]=[a|b|c]`` / ``[n]``: those ids only; ``filter[id_product]=[a|b|c]`` (the combinations of a
  batch of products; any equality or list on a column): the rows holding those values;
- ``filter[id]=>[x]&sort=[id_ASC]`` (id walks, sweeps): the ids after ``x``;
- ``filter[date_upd]=[from,to]`` or ``>[d]`` with ``sort=[date_upd_ASC,id_ASC]`` (keyset windows): the
  ``(date, id)`` index from ``from``;
- ``filter[date_upd]=[d,d]&filter[id]=>[x]&sort=[id_ASC]`` (the rest of one second): the ids of second ``d``
  after ``x``.

These indexes only choose which rows to look at and in which order; every row looked at still goes through
the scope and every filter of the request (``PrestaShopSimulator._list``), so an index can only make a page
cheaper, never change it. They are rebuilt lazily when the shop's ``revision`` (bumped by every mutation and by
``touch()``) or the table's size changed; a row found with another key than its index entry (edited by hand
without ``touch()``) makes the listing fall back to the generic path and drops the index.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.sandbox.shop_model import Record, ShopData

Stamp = tuple[int, int]


@dataclass
class DateIndex:
    """The rows of one table whose ``field`` is not NULL, by ``(key, id)``: ``keys[i]`` is row ``ids[i]``'s."""

    keys: list[Any]
    ids: list[int]

    def span(self, op: str, operands: tuple[Any, ...]) -> tuple[int, int]:
        """``[start, end)`` of the entries a condition (between, gt, lt, eq on the key) can match."""
        keys = self.keys
        if op == "between":
            lo, hi = operands
            if lo > hi:
                return 0, 0
            return bisect_left(keys, lo), bisect_right(keys, hi)
        if op == "eq":
            return bisect_left(keys, operands[0]), bisect_right(keys, operands[0])
        if op == "gt":
            return bisect_right(keys, operands[0]), len(keys)
        if op == "lt":
            return 0, bisect_left(keys, operands[0])
        raise ValueError(op)


class TableIndexes:
    """Lazily built sorted ids and ``(date, id)`` indexes of a shop's tables."""

    def __init__(self, shop: ShopData) -> None:
        self.shop = shop
        self._ids: dict[str, tuple[Stamp, list[int]]] = {}
        self._dates: dict[tuple[str, str], tuple[Stamp, DateIndex]] = {}
        self._aligned: dict[tuple[str, int], tuple[Stamp, bool]] = {}
        self._values: dict[tuple[str, str], tuple[Stamp, dict[Any, list[int]]]] = {}

    def _stamp(self, resource: str) -> Stamp:
        return self.shop.revision, len(self.shop.tables.get(resource, ()))

    def drop(self) -> None:
        self._ids.clear()
        self._dates.clear()
        self._aligned.clear()
        self._values.clear()

    def ids(self, resource: str) -> list[int]:
        stamp = self._stamp(resource)
        got = self._ids.get(resource)
        if got is None or got[0] != stamp:
            got = (stamp, sorted(self.shop.tables.get(resource, {})))
            self._ids[resource] = got
        return got[1]

    def values(self, resource: str, name: str, key: Callable[[Any], Any]) -> dict[Any, list[int]]:
        """The ids of the rows by the key of their ``name`` (main rows; NULLs left out)."""
        stamp = self._stamp(resource)
        got = self._values.get((resource, name))
        if got is None or got[0] != stamp:
            by_key: dict[Any, list[int]] = {}
            for rid, rec in self.shop.tables.get(resource, {}).items():
                k = key(rec.get(name))
                if k is not None:
                    by_key.setdefault(k, []).append(rid)
            got = (stamp, by_key)
            self._values[(resource, name)] = got
        return got[1]

    def dates(self, resource: str, name: str, key: Callable[[Any], Any]) -> DateIndex:
        """``name``'s index over the main rows (what filters read), ``key`` the column's comparison key."""
        stamp = self._stamp(resource)
        got = self._dates.get((resource, name))
        if got is None or got[0] != stamp:
            entries = []
            for rid, rec in self.shop.tables.get(resource, {}).items():
                k = key(rec.get(name))
                if k is not None:
                    entries.append((k, rid))
            entries.sort()
            got = (stamp, DateIndex([k for k, _ in entries], [rid for _, rid in entries]))
            self._dates[(resource, name)] = got
        return got[1]

    def products_aligned(self, name: str, ctx_shop: int, key: Callable[[Any], Any]) -> bool:
        """Whether every product's ``name`` in the shop row the context shows (what sorts read) has the same
        key as in its main row (what filters read): then the main-row index is also the sort order."""
        stamp = self._stamp("products")
        got = self._aligned.get((name, ctx_shop))
        if got is None or got[0] != stamp:
            aligned = True
            products = self.shop.tables.get("products", {})
            for pid, rows in self.shop.product_shop.items():
                if not rows:
                    continue
                row: Record | None = rows.get(ctx_shop)
                if row is None:
                    row = rows[min(rows)]
                rec = products.get(pid)
                if rec is not None and name in row and key(row[name]) != key(rec.get(name)):
                    aligned = False
                    break
            got = (stamp, aligned)
            self._aligned[(name, ctx_shop)] = got
        return got[1]
