"""The write gate: writers wait here while a commit freezes the tree, and while the dirty
data waiting for upload is over its limit (so a slow or absent network fills no disk).

`dirty_bytes` is an estimate: the uploader measures the dirty blocks from the database after
every pack and when it scans, and every write adds its length in between, so the estimate
errs high. Waiting writers wake whenever either changes.
"""

from __future__ import annotations

import trio


class WriteGate:
    def __init__(self, dirty_limit: int) -> None:
        self.dirty_limit = dirty_limit
        self.dirty_bytes = 0
        self._frozen = 0
        self._changed = trio.Event()
        # Writers waiting because of the dirty limit (not a freeze).
        self.waiting = 0

    @property
    def frozen(self) -> bool:
        return self._frozen > 0

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def enter(self, nbytes: int) -> None:
        """Wait until a write of `nbytes` may go ahead, and count it as dirty."""
        while self._frozen or self.dirty_bytes > self.dirty_limit:
            over = self.dirty_bytes > self.dirty_limit
            self.waiting += over
            try:
                await self._changed.wait()
            finally:
                self.waiting -= over
        self.dirty_bytes += nbytes

    @property
    def pressed(self) -> bool:
        """Writers wait, or soon will: the uploader should not hold data back."""
        return self.waiting > 0 or self.dirty_bytes > self.dirty_limit // 2

    def measured(self, dirty_bytes: int) -> None:
        self.dirty_bytes = dirty_bytes
        self._notify()

    def freeze(self) -> None:
        self._frozen += 1

    def thaw(self) -> None:
        self._frozen -= 1
        self._notify()
