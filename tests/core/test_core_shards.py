"""neuroplex.shards: shards of a job on forked worker processes, or here where forking is unsafe."""
from __future__ import annotations

import os

import pytest
import torch

from neuroplex import shards
from neuroplex.shards import can_fork, map_shards


def _where_and_threads(i: int) -> tuple[int, int, int]:
    return i, os.getpid(), torch.get_num_threads()


def test_shards_come_back_in_order_from_worker_processes() -> None:
    if not can_fork():
        pytest.skip("this platform cannot fork worker processes")  # e.g. macOS, Windows
    before = torch.get_num_threads()
    out = map_shards(_where_and_threads, 3)
    assert [i for i, _, _ in out] == [0, 1, 2]
    # shard 0 runs here, the others in forked workers (a worker done with a quick shard may
    # take the next one too: the pool hands shards to whichever worker is free)
    assert out[0][1] == os.getpid() and all(pid != os.getpid() for _, pid, _ in out[1:])
    assert all(threads == 1 for _, _, threads in out)  # one torch thread per process
    assert torch.get_num_threads() == before


def test_without_fork_the_shards_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "can_fork", lambda: False)
    out = map_shards(_where_and_threads, 3)
    assert [i for i, _, _ in out] == [0, 1, 2] and {pid for _, pid, _ in out} == {os.getpid()}


def _fails_in_a_worker(i: int) -> int:
    if i == 1:
        raise ValueError(f"shard {i} has bad input")
    return i


def test_a_failing_shard_raises_here() -> None:
    with pytest.raises(ValueError, match="shard 1 has bad input"):
        map_shards(_fails_in_a_worker, 2)


def _compile_threads(i: int) -> int:
    import torch._inductor.config as inductor_config

    return inductor_config.compile_threads


def test_forked_workers_compile_in_their_own_process() -> None:
    """The parent's pool of inductor compile workers does not survive a fork: workers compile alone."""
    if not can_fork():
        pytest.skip("this platform cannot fork worker processes")
    out = map_shards(_compile_threads, 3)
    assert out[1:] == [1, 1]


def test_shards_write_their_part_of_a_shared_result_in_place() -> None:
    if not can_fork():
        pytest.skip("this platform cannot fork worker processes")
    out = shards.shared_empty((4, 3, 2))
    assert out.shape == (4, 3, 2) and out.dtype == torch.float64

    def fill(i: int) -> int:
        out[i] = float(i)
        return os.getpid()

    pids = map_shards(fill, 4)
    assert any(pid != os.getpid() for pid in pids)  # some parts were written in other processes
    assert torch.equal(out, torch.arange(4, dtype=torch.float64)[:, None, None].expand(4, 3, 2))
    assert shards.shared_empty((0, 5), torch.float32).shape == (0, 5)


def test_one_thread_holds_for_its_block_and_restores_the_count() -> None:
    from neuroplex.shards import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with one_thread():
                assert torch.get_num_threads() == 1
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_reused_shared_mappings_are_handed_out_only_when_nothing_references_them() -> None:
    first = shards.shared_empty((1000, 7), reuse=True)
    address = first.data_ptr()
    view = first[3:5].numpy()  # a view still holds the mapping
    del first
    other = shards.shared_empty((1000, 7), reuse=True)
    second = other.data_ptr()
    assert second != address
    del view, other
    again = shards.shared_empty((900, 7), torch.int64, reuse=True)  # free again, and big enough
    assert again.data_ptr() in (address, second)
    assert again.shape == (900, 7) and again.dtype == torch.int64
    assert shards.shared_empty((100, 7), reuse=True).data_ptr() not in (address, second)  # too big a mapping
    assert len(shards._POOL) <= shards.POOL_SIZE
