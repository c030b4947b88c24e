"""Which 64-bit tokens a streaming pass has already seen: the cross-row checks of an import.

A Python ``set`` of ints costs about 80 bytes per entry (the int object plus its hash slot):
160 MB for the two sets a million-row import keeps, more than the rest of the import together.
Here a token costs 8 bytes: sorted NumPy runs, merged like a binary counter (a run is merged
into the one before it when that one is not larger), so there are at most log2(n / batch) runs
and a batch of lookups is one vectorised binary search per run. Tokens arrive a batch at a time,
which is how the import checks rows anyway.
"""

from __future__ import annotations

import numpy as np

_NONE = np.zeros(0, dtype=bool)


class TokenRuns:
    """A growing set of unsigned 64-bit integers, added and looked up in batches."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, tokens: np.ndarray | list[int]) -> np.ndarray:
        """For each token, whether it was added before."""
        tokens = np.asarray(tokens, dtype=np.uint64)
        found = np.zeros(len(tokens), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, tokens)
            np.minimum(at, len(run) - 1, out=at)
            found |= run[at] == tokens
        return found

    def add(self, tokens: np.ndarray | list[int]) -> np.ndarray:
        """Add tokens given in file order; returns, for each, whether it came before: earlier
        in this same batch, or in an earlier one. So the second and later rows of a repeated
        key are the ones flagged, as a reader of the file would expect."""
        tokens = np.asarray(tokens, dtype=np.uint64)
        if not len(tokens):
            return _NONE
        unique, first = np.unique(tokens, return_index=True)
        earlier = np.ones(len(tokens), dtype=bool)
        earlier[first] = False
        known = self.contains(unique)
        earlier |= known[np.searchsorted(unique, tokens)]
        self._push(unique[~known])
        return earlier

    def _push(self, run: np.ndarray) -> None:
        if not len(run):
            return
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2]) <= len(runs[-1]):
            last = runs.pop()
            merged = np.concatenate((runs[-1], last))
            merged.sort(kind="stable")  # two sorted halves: a linear merge
            runs[-1] = merged
