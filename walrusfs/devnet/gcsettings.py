"""Garbage-collector settings for the devnet's own processes (`walrusfs devnet`, the node host).

A store allocates a few hundred container objects that outlive it a while (cached metadata,
ledger objects, trio's bookkeeping). Under a stream of 1 MiB stores with CPython's default
thresholds (700, 10, 10), the collector ran 20-25 times a second in the publisher's process
and took 4-5% of its time, in pauses of up to 150 ms (the oldest generation's, which walk
everything the ledger holds) during which no thread of the process runs. Freezing what exists
once the services are up (it lives as long as the process) and collecting the youngest
generation every `YOUNG_THRESHOLD` allocations instead of 700 brought that to about 1% and
pauses of at most 25 ms (measured with gc.callbacks; a threshold of 20,000 saved a little more
time but paused longer).

Only processes that are nothing but the devnet call `settle`: a devnet embedded in another
program (mount.walrusfs, a test) leaves that program's collector alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 5_000


def settle() -> None:
    """Call once the process's services are up: keep what exists out of every later
    collection, and collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
