"""Which segments to merge: size tiers, as in a log-structured merge tree.

A live stream commits one small segment per batch. Merging every segment into one each
time (what LensDB did first) rewrites the whole store every few commits: quadratic in the
stream's length. Here segments are grouped into tiers by size (tier t holds segments of
FANOUT**t to FANOUT**(t+1) vectors) and a tier is merged only once it holds FANOUT
segments; the merged segment lands in a higher tier. A vector is therefore rewritten at
most once per tier, log_FANOUT(n) times in all, and a store keeps at most about
FANOUT - 1 segments per tier (plus what arrives between two checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lensdb.storage.catalog import next_ids

if TYPE_CHECKING:
    from lensdb.storage.store import Store

FANOUT = 8  # segments of one size tier merged together; also the size ratio between tiers


@dataclass
class CompactionStats:
    """What a round of merging rewrote."""

    merges: int = 0  # merged segments written
    vectors: int = 0  # vectors rewritten
    bytes: int = 0  # bytes written in the new segment files

    def add(self, vectors: int, nbytes: int) -> None:
        self.merges += 1
        self.vectors += vectors
        self.bytes += nbytes


def size_tier(n: int, fanout: int = FANOUT) -> int:
    """The tier of a segment of n vectors: floor(log_fanout(n))."""
    return int(math.log(max(n, 1), fanout) + 1e-9)


def plan_merges(segments: list[tuple[int, int]], fanout: int = FANOUT) -> list[list[int]]:
    """Groups of segment ids to merge, one per tier holding `fanout` segments or more.

    `segments`: (segment id, vectors). Run it again after merging: a merge can fill the
    next tier.
    """
    tiers: dict[int, list[int]] = {}
    for seg_id, n in segments:
        tiers.setdefault(size_tier(n, fanout), []).append(seg_id)
    return [sorted(ids) for _, ids in sorted(tiers.items()) if len(ids) >= fanout]


def merge_tiers(store: Store) -> CompactionStats:
    """Merge every tier that holds FANOUT segments or more, until none does (writer only)."""
    stats = CompactionStats()
    while True:
        rows = store.segments()
        groups = plan_merges([(seg_id, n) for seg_id, _, n in rows])
        if not groups:
            return stats
        files = {seg_id: name for seg_id, name, _ in rows}
        for group in groups:
            merge(store, [files[i] for i in group], group, stats)


def merge_all(store: Store) -> CompactionStats:
    """Merge every segment into one (writer only)."""
    rows = store.segments()
    stats = CompactionStats()
    if len(rows) >= 2:
        merge(store, [name for _, name, _ in rows], [seg_id for seg_id, _, _ in rows], stats)
    return stats


def merge(store: Store, names: list[str], seg_ids: list[int], stats: CompactionStats) -> None:
    """Write the union of some segments as one new file (outside the catalog lock), list
    it in their place in one transaction, then delete the old files (a reader that listed
    them before retries; a crash before the commit leaves only an unlisted new file)."""
    name, total = store.vectors.merge_to_file(names)
    try:
        with store.catalog.connect(write=True) as con:
            con.execute("BEGIN")
            new_id = next_ids(con)[1]
            con.execute("DELETE FROM segments WHERE list_contains(?, segment_id)", [seg_ids])
            con.execute("INSERT INTO segments VALUES (?, ?, ?, now())", [new_id, name, total])
            con.execute("UPDATE frames SET segment_id = ? WHERE list_contains(?, segment_id)",
                        [new_id, seg_ids])
            con.execute("COMMIT")
    except BaseException:
        store.vectors.remove(name)
        raise
    store.forget_next_ids()
    for old in names:
        store.vectors.remove(old)
    stats.add(total, store.vectors.file_size(name))
