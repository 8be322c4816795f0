"""Process tuning for long-running servers and ingest workers."""

from __future__ import annotations

import gc


YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Move what start-up loaded (tariff index, classifier, models: hundreds of thousands of objects that
    live as long as the process) out of the cyclic garbage collector's generations. Otherwise every full
    collection walks them again; measured at 15-20 % of a filing's CPU time. Forked workers inherit it.

    The youngest generation is also collected less often (every 50,000 net allocations instead of 700):
    a batch of filings allocates millions of short-lived objects freed by reference counting, and the
    default threshold made the collector walk them, and promote them to older generations, about 10-20 %
    of batch filing time (A/B in the issue 2 note). Cycles still get collected, only later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
