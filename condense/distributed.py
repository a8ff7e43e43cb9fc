"""Several processes, one run: ``torch.distributed`` as ``torchrun`` launches it, in one place.

``torchrun --nproc-per-node N -m condense <command> ...`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address in their environment (several machines: ``--nnodes`` and a
rendezvous endpoint). :func:`init` reads that environment and joins the process group: NCCL when the processes
use CUDA devices (rank r on ``cuda:LOCAL_RANK``), gloo on the CPU. A single process (no ``WORLD_SIZE`` or
``WORLD_SIZE=1``) never creates a group, and every helper below is then a no-op, so the methods run unchanged
either way.

What the library splits across ranks (each rank takes the items of :class:`condense.shard.Shard` rank+1/N):

* expert buffers: experts (rank 0 writes the manifest);
* evaluation: the training runs of every evaluated set, gathered back in run order;
* the bench: cells (sharing the results file, whose appends are locked);
* DataDAM: each iteration's real batch (batch-norm statistics and class means are summed across ranks);
* trajectory matching: each inner step's synthetic minibatch (the inner gradients are summed with a
  differentiable all-reduce).

Writing (artifacts, checkpoints, reports, progress bars, the command's output) happens on rank 0 only.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

_STATE: dict[str, Any] = {"initialised_here": False}


def requested() -> bool:
    """Whether this process was launched as one of several (``WORLD_SIZE`` > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one process is running."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if active() else 0


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files and prints."""
    return rank() == 0


def init(device: str | torch.device | None = "auto") -> bool:
    """Join the process group the launcher described, once (idempotent); returns whether one is active.

    Backend: NCCL when this process's device is CUDA, gloo otherwise. Non-zero ranks run quietly (no progress
    bars, no info logs), so a run prints once."""
    import torch.distributed as dist

    if not requested():
        return False
    if dist.is_initialized():
        return active()
    from condense.runtime import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    _STATE["initialised_here"] = True
    if dist.get_rank() != 0:
        from condense.progress import set_quiet

        set_quiet(True)
    return active()


def shutdown(*, synchronise: bool = True) -> None:
    """Leave the process group this module joined (the CLI calls it on exit). With ``synchronise`` (a command
    that ended normally) every rank first waits for the others, so no rank tears its connections down while
    another still uses them; after an error a rank leaves at once, as the others may never arrive."""
    import torch.distributed as dist

    if _STATE["initialised_here"] and dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()
        _STATE["initialised_here"] = False


def barrier() -> None:
    import torch.distributed as dist

    if active():
        dist.barrier()


def my_shard():
    """This rank's :class:`~condense.shard.Shard`, or None in a single process."""
    from condense.shard import Shard

    return Shard(rank() + 1, world_size()) if active() else None


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    import torch.distributed as dist

    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (in place, also returned); no gradient flows through it."""
    import torch.distributed as dist

    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def differentiable_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks with autograd (PyTorch's functional collectives): its backward sums the incoming
    gradients over ranks, so a loss that every rank computes identically must be divided by
    :func:`world_size` first."""
    if not active():
        return tensor
    import torch.distributed as dist
    from torch.distributed._functional_collectives import all_reduce, wait_tensor

    return wait_tensor(all_reduce(tensor, "sum", dist.group.WORLD))


def positions() -> slice:
    """This rank's positions in anything the ranks split: rank, rank + N, rank + 2N, ... (every position in a
    single process); the same share as :func:`my_shard`'s, for lists and tensors alike."""
    return slice(rank(), None, world_size())


def take(items: Sequence[Any]) -> list[Any]:
    """This rank's share of ``items`` (all of them in a single process)."""
    return list(items)[positions()]


def merge_by_position(parts: Sequence[Sequence[Any]], total: int) -> list[Any]:
    """Re-interleave per-rank :func:`take` results (``parts[r]`` from rank r) into the original order."""
    out: list[Any] = [None] * total
    for r, part in enumerate(parts):
        out[r::len(parts)] = part
    return out


def gather_in_order(mine: Sequence[Any], total: int) -> list[Any]:
    """Every rank's results for its :func:`take` share of ``total`` items, back in item order (``mine`` itself in
    a single process)."""
    return merge_by_position(gather_objects(list(mine)), total)
