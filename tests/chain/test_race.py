"""Two writers race to advance the same anchor: exactly one wins each round."""

from __future__ import annotations

import trio
from chain.conftest import Devnet, Wallet

from walrusfs.chain import Anchor, AnchorConflict, SuiChainClient

ROUNDS = 12


async def test_two_writers_race_for_the_anchor(devnet: Devnet, wallet: Wallet):
    blob = devnet.blob(wallet.address)
    # two clients of the same key, each with its own pysui client and asyncio bridge
    writers = [await SuiChainClient.open(devnet.net, wallet.directory) for _ in range(2)]
    wins = [0, 0]
    conflicts = [0, 0]
    history: list[tuple[int, str]] = []
    try:
        for rnd in range(ROUNDS):
            start = await writers[0].read_anchor(blob)
            seen = [await w.read_anchor(blob) for w in writers]
            assert all(s.version == start.version for s in seen)
            results: list[Anchor | AnchorConflict | None] = [None, None]

            async def write(
                i: int,
                anchor: Anchor,
                rnd: int = rnd,
                results: list[Anchor | AnchorConflict | None] = results,
            ) -> None:
                try:
                    results[i] = await writers[i].compare_and_swap_anchor(
                        anchor, {"seq": str(rnd + 1), "writer": f"w{i}"}
                    )
                except AnchorConflict as exc:
                    results[i] = exc

            async with trio.open_nursery() as nursery:
                for i in (0, 1):
                    nursery.start_soon(write, i, seen[i])
            won = [i for i in (0, 1) if isinstance(results[i], Anchor)]
            lost = [i for i in (0, 1) if isinstance(results[i], AnchorConflict)]
            assert len(won) == 1 and len(lost) == 1, results
            winner = won[0]
            wins[winner] += 1
            conflicts[lost[0]] += 1
            new = results[winner]
            assert isinstance(new, Anchor)
            history.append((new.version, f"w{winner}"))
            current = await writers[lost[0]].read_anchor(blob)
            assert current == new  # the loser sees exactly the winner's write
            assert current.metadata_map == {"seq": str(rnd + 1), "writer": f"w{winner}"}
        final = await writers[0].read_anchor(blob)
        assert final.metadata_map["seq"] == str(ROUNDS)
        assert final.version == history[-1][0]
        assert [v for v, _ in history] == sorted({v for v, _ in history})  # strictly increasing
        assert sum(wins) == ROUNDS and sum(conflicts) == ROUNDS
    finally:
        for w in writers:
            await w.aclose()
