"""Two CPU processes with gloo train one model: both end with identical weights, rank 0 writes."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

from covidxray.training.distributed import World, start_world
from synthetic_xrays import write_split

sys.path.insert(0, str(Path(__file__).parent))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank(rank: int, world_size: int, port: int, split_file: str, folder: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from covidxray.training.loop import TrainConfig, train

    result = train(TrainConfig(model="xray-cnn", task="binary", split=Path(split_file), out=Path(folder) / "run",
                               epochs=2, batch_size=4, size=32, cache_dir=Path(folder) / "cache", threads=1,
                               show_progress=False))
    torch.save({"state": result.screener.state_dict(), "history": result.history.to_dict("list")},
               Path(folder) / f"rank{rank}.pt")


def test_two_gloo_processes_end_with_identical_weights_and_only_rank0_writes(tmp_path):
    split_file = write_split(tmp_path / "xrays", {"train": 6, "val": 3})
    mp.spawn(_rank, args=(2, _free_port(), str(split_file), str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert first["state"].keys() == second["state"].keys()
    for name, value in first["state"].items():  # parameters and batch-norm statistics alike
        assert torch.equal(value, second["state"][name]), name
    for column in ("train_loss", "val_loss", "val_auroc"):  # both ranks saw the same gathered validation
        assert first["history"][column] == second["history"][column], column
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "curves.png", "history.csv", "last.pt"]
    record = torch.load(run / "last.pt", weights_only=True)["record"]
    assert record["world_size"] == 2


def test_without_torchrun_environment_the_world_is_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = start_world("cpu")
    assert world == World() and world.is_main and not world.distributed
