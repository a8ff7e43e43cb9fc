"""The MTT meta-gradient of a few fixed problems, computed in this process or, under ``torchrun``, across its ranks.

``python -m torch.distributed.run --nproc-per-node 2 distributed_meta_gradient.py OUT`` writes rank 0's results to
``OUT`` (safetensors); ``test_distributed.py`` compares them with :func:`meta_gradients` run in one process. Every
rank builds the same student, images and inner plan from fixed seeds; :func:`meta_gradient` splits each inner
minibatch across the ranks.
"""
from __future__ import annotations

import sys

import torch

from condense import distributed
from condense.artifacts import SCHEMA_VERSION, write_safetensors
from condense.vision.augment import DSA, DSAConfig
from condense.vision.nets import build_net
from condense.vision.trajectory import FunctionalNet, InnerPlan, Segment, meta_gradient

CLASSES, IPC, SIDE, STEPS = 2, 4, 8, 4
#: (name, checkpointed, momentum, synthetic batch); the batches of 5 split 3 + 2 across two ranks
CASES = (("plain", False, 0.0, 5), ("checkpointed", True, 0.0, 5), ("momentum", False, 0.5, 5),
         ("checkpointed-momentum", True, 0.5, 5), ("whole-set", False, 0.0, None))


def meta_gradients() -> dict[str, torch.Tensor]:
    """``{case/loss, case/images, case/alpha}`` for every case (a float32 ConvNet-1 with DSA)."""
    net = build_net("convnet-d1-w8", 1, CLASSES, SIDE, generator=torch.Generator().manual_seed(0))
    student = FunctionalNet(net)
    g = torch.Generator().manual_seed(1)
    start = student.layout.flatten(net)
    segment = Segment(start, start + 0.05 * torch.randn(start.shape, generator=g))
    images = torch.randn(CLASSES * IPC, 1, SIDE, SIDE, generator=g)
    labels = torch.arange(CLASSES).repeat_interleave(IPC)
    alpha = torch.tensor(0.01)
    dsa = DSA(DSAConfig(strategy="color_crop_cutout_flip_scale_rotate"))
    out = {}
    for name, checkpoint, momentum, batch in CASES:
        plan = InnerPlan.draw(images.shape[0], STEPS, batch, (SIDE, SIDE), torch.Generator().manual_seed(2), dsa=dsa,
                              momentum=momentum)
        loss, d_images, d_alpha = meta_gradient(student, segment, images, labels, alpha, plan, checkpoint=checkpoint)
        out.update({f"{name}/loss": loss, f"{name}/images": d_images, f"{name}/alpha": d_alpha.reshape(())})
    return out


if __name__ == "__main__":
    distributed.init("cpu")
    finished = False
    try:
        result = meta_gradients()
        plan = InnerPlan.draw(CLASSES * IPC, STEPS, 5, (SIDE, SIDE), torch.Generator().manual_seed(2))
        shares = distributed.gather_objects(plan.shard(distributed.positions()).batches[0].numel())
        if distributed.is_main():  # the shares of one minibatch of 5 each rank unrolled
            write_safetensors(sys.argv[1], result, {"schema_version": SCHEMA_VERSION, "shares": shares})
        finished = True
    finally:
        distributed.shutdown(synchronise=finished)
