"""The import's memory-lean "seen before" sets behave exactly like a Python set."""

from hypothesis import given, settings
from hypothesis import strategies as st

from app.io.tokens import TokenRuns

TOKENS = st.integers(min_value=0, max_value=2**64 - 1)
SMALL = st.integers(min_value=0, max_value=50)  # repeats across and within batches


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(TOKENS, SMALL), max_size=30), max_size=40))
def test_a_token_is_flagged_exactly_when_it_came_before_in_file_order(batches):
    runs, reference = TokenRuns(), set()
    for batch in batches:
        expected = []
        for token in batch:
            expected.append(token in reference)
            reference.add(token)
        assert runs.add(batch).tolist() == expected
        assert len(runs) == len(reference)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(SMALL, max_size=20), max_size=30), st.lists(st.one_of(TOKENS, SMALL)))
def test_contains_answers_for_everything_added_so_far(batches, probes):
    runs, reference = TokenRuns(), set()
    for batch in batches:
        runs.add(batch)
        reference.update(batch)
    assert runs.contains(probes).tolist() == [p in reference for p in probes]


def test_the_largest_and_smallest_tokens_and_an_empty_batch():
    runs = TokenRuns()
    assert runs.add([]).tolist() == []
    assert runs.contains([0, 2**64 - 1]).tolist() == [False, False]
    assert runs.add([2**64 - 1, 0, 2**64 - 1]).tolist() == [False, False, True]
    assert runs.contains([0, 1, 2**64 - 1]).tolist() == [True, False, True]


def test_a_million_tokens_take_eight_bytes_each_in_few_runs():
    runs = TokenRuns()
    for start in range(0, 1_000_000, 4000):
        runs.add(list(range(start * 7919 % 2**40, start * 7919 % 2**40 + 4000)))
    assert len(runs) <= 1_000_000
    assert sum(run.nbytes for run in runs._runs) == 8 * len(runs)
    assert len(runs._runs) <= 10  # a binary counter: log2(250 batches) + 1
