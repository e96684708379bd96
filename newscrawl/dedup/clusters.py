"""Clusters of duplicates and their root (pure, no database).

Every indexed article has a ``root``: the earliest-published article of its
cluster (itself when it has no duplicate). When new matches join clusters,
:func:`plan_merges` says which clusters merge and which article becomes the
root of the merged one, so that ``duplicate_of`` always names the
earliest-published copy, also when that copy is crawled last. Clusters only
grow: a match found once is never undone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Node:
    """An article as the clustering sees it: when it was published (None:
    unknown, sorts last) and the root of its cluster as stored."""

    key: str
    published_at: datetime | None
    root: str


def order_key(node: Node) -> tuple[datetime, str]:
    """Earliest published first; unknown dates last; ties by key.

    >>> a = Node("b", datetime(2022, 2, 18, tzinfo=UTC), "b")
    >>> sorted([Node("z", None, "z"), a, Node("a", a.published_at, "a")], key=order_key)[0].key
    'a'
    """
    published = node.published_at
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return (published if published is not None else _LATEST, node.key)


@dataclass(frozen=True)
class Merge:
    """One merged cluster: its new ``root``, and the roots of the clusters
    merged into it (every article whose root is one of ``old_roots`` now
    has ``root`` as its root and ``duplicate_of``)."""

    root: str
    old_roots: frozenset[str]


def plan_merges(nodes: Mapping[str, Node], edges: Iterable[tuple[str, str]]) -> list[Merge]:
    """The merges that ``edges`` (verified duplicate pairs) cause. ``nodes``
    holds every key of ``edges`` and every root they name (a missing root
    is taken as unknown-date); an article is in the cluster of its root.

    Two new copies, the later one points to the earlier:

    >>> t = [datetime(2022, 2, day, tzinfo=UTC) for day in range(1, 5)]
    >>> nodes = {"b": Node("b", t[1], "b"), "c": Node("c", t[2], "c")}
    >>> plan_merges(nodes, [("c", "b")])
    [Merge(root='b', old_roots=frozenset({'c'}))]

    The earliest copy crawled last becomes the root; the old cluster re-points:

    >>> nodes |= {"a": Node("a", t[0], "a"), "c": Node("c", t[2], "b")}
    >>> plan_merges(nodes, [("a", "c")])
    [Merge(root='a', old_roots=frozenset({'b'}))]

    A match inside one cluster changes nothing:

    >>> plan_merges(nodes, [("b", "c")])
    []
    """
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    def node(key: str) -> Node:
        return nodes.get(key) or Node(key, None, key)

    for a, b in edges:
        union(a, b)
    # every article sits in its stored root's cluster (and a root in its own
    # root's, when another writer re-pointed it meanwhile)
    for key in list(parent):
        seen = {key}
        current = node(key)
        while current.root not in seen:
            union(current.key, current.root)
            seen.add(current.root)
            current = node(current.root)
    components: dict[str, list[Node]] = {}
    for key in parent:
        components.setdefault(find(key), []).append(node(key))
    merges = []
    for members in components.values():
        root = min(members, key=order_key).key
        old_roots = frozenset(m.root for m in members) - {root}
        if old_roots:
            merges.append(Merge(root, old_roots))
    return sorted(merges, key=lambda m: m.root)
