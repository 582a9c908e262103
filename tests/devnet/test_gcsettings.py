"""The devnet's own processes collect garbage less often, and never walk what they started with."""

from __future__ import annotations

import json
import subprocess
import sys

from walrusfs.devnet import gcsettings


def test_settle_freezes_what_exists_and_raises_the_young_threshold() -> None:
    # In a process of its own: the setting is process-wide, and pytest's must stay as it is.
    program = (
        "import gc, json; from walrusfs.devnet import gcsettings; "
        "before = gc.get_threshold(); kept = [[i] for i in range(1000)]; gcsettings.settle(); "
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    before, after, frozen = json.loads(out)
    assert after == [gcsettings.YOUNG_THRESHOLD, before[1], before[2]]
    assert before[0] < gcsettings.YOUNG_THRESHOLD
    assert frozen >= 1000
