"""``in_time_order`` against a plain stable sort: by log time, then batch, then record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivecat.ingest.source_types import Channel, RawMessage
from drivecat.ingest.time_order import NEVER, batch_of, in_time_order

CHANNEL = Channel("/t", "json", None)

# batches of (log time) lists; small times so that equal times across batches are common
batches_strategy = st.lists(st.lists(st.integers(0, 40), max_size=12), max_size=10)


@settings(max_examples=300, deadline=None)
@given(batches_strategy)
def test_batches_come_out_by_time_then_batch_then_record(times: list[list[int]]) -> None:
    """Each batch carries the smallest time of every batch after it, as an index gives."""
    batches = [
        [RawMessage(CHANNEL, t, t, 0, f"{b}:{r}".encode()) for r, t in enumerate(ts)]
        for b, ts in enumerate(times)
    ]
    batches = [b for b in batches if b]
    later = [min((m.log_time_ns for b in batches[i + 1 :] for m in b), default=NEVER)
             for i in range(len(batches))]  # fmt: skip
    got = list(in_time_order(zip((batch_of(b) for b in batches), later, strict=True)))
    # Python's sort is stable: equal times keep batch order, then record order
    want = sorted((m for b in batches for m in b), key=lambda m: m.log_time_ns)
    assert got == want
