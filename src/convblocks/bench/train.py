"""Training benchmark: the default ``convblocks train`` CNN, ours vs PyTorch.

Both sides build the SAME network (:func:`convblocks.cli.train.build_model`: conv-BN-
ReLU-pool twice, dense, dropout, dense), the same batch size and Adam with the same
cosine schedule, and train on the same random 28x28 images. One "epoch" here is
``batches`` mini-batches; the epochs alternate ours, PyTorch, ours, ... (after one
warm-up epoch each) and the median is reported, with the time a full 60,000-image
Fashion-MNIST epoch would take at that speed. Target: ours / PyTorch <= 1.5.

PyTorch is imported inside :func:`run_train_bench` only; the caller sets its threads.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["run_train_bench", "format_train_report", "TARGET_RATIO", "FULL_EPOCH"]

#: The goal for our time per epoch / PyTorch's.
TARGET_RATIO = 1.5
#: Images of one Fashion-MNIST training epoch, for the extrapolated epoch time.
FULL_EPOCH = 60_000


def _torch_model(torch: Any, *, width: int, num_classes: int, lr: float, total_steps: int):
    """PyTorch twin of the default CNN (NCHW), its Adam and cosine schedule."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 4 * width), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(4 * width, num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return model, opt, sched


def run_train_bench(*, batches: int, batch_size: int | None, seed: int,
                    repeats: int = 3, pause: float = 0.15) -> dict[str, Any]:
    """Time ``batches`` training steps of the default CNN, ours and PyTorch's.

    Parameters
    ----------
    batches : int
        Mini-batches per timed epoch (>= 1).
    batch_size : int or None
        Images per batch; None means ``convblocks train``'s default.
    seed : int
        Seeds the random data and both models' weights.
    repeats : int, optional
        Timed epochs per side (the median is reported), after one warm-up epoch.
    pause : float, optional
        Seconds to sleep before each epoch (lets BLAS worker threads go idle).

    Returns
    -------
    dict
        JSON-ready: ``batches``, ``batch_size``, ``ours_s`` and ``torch_s`` (median
        seconds per timed epoch), ``*_samples_s``, ``*_images_per_s``,
        ``*_full_epoch_s`` (extrapolated to 60,000 images), ``ratio`` (ours / torch),
        ``target`` and ``ok``.
    """
    import torch

    from convblocks.cli.train import DEFAULTS, build_model, compile_model

    if batches < 1:
        raise ValueError(f"batches must be >= 1; got {batches}")
    if batch_size is None:
        batch_size = DEFAULTS["batch_size"]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    width, lr, classes = DEFAULTS["width"], DEFAULTS["lr"], 10
    n = batches * batch_size
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)          # NHWC, ours
    y = rng.integers(0, classes, n)
    total_steps = (repeats + 1) * batches

    ours = build_model((28, 28, 1), classes, width=width, seed=seed)
    compile_model(ours, lr=lr, total_steps=total_steps)

    torch.manual_seed(seed)
    tmodel, topt, tsched = _torch_model(torch, width=width, num_classes=classes, lr=lr,
                                        total_steps=total_steps)
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))   # NCHW
    ty = torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def our_epoch() -> None:
        ours.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, seed=seed)

    def torch_epoch() -> None:
        tmodel.train()
        for i in range(batches):
            xb, yb = tx[i * batch_size:(i + 1) * batch_size], ty[i * batch_size:(i + 1) * batch_size]
            topt.zero_grad(set_to_none=True)
            loss = loss_fn(tmodel(xb), yb)
            loss.backward()
            topt.step()
            tsched.step()

    samples: dict[str, list[float]] = {"ours": [], "torch": []}
    for round_ in range(repeats + 1):                     # round 0 warms both up
        for name, fn in (("ours", our_epoch), ("torch", torch_epoch)):
            time.sleep(pause)                             # let BLAS threads go idle
            t0 = time.perf_counter()
            fn()
            if round_:
                samples[name].append(time.perf_counter() - t0)
    ours_s = float(np.median(samples["ours"]))
    torch_s = float(np.median(samples["torch"]))
    steps_full = -(-FULL_EPOCH // batch_size)
    ratio = ours_s / torch_s
    return {
        "batches": batches, "batch_size": batch_size, "repeats": repeats,
        "model": "Conv32-BN-ReLU-Pool-Conv64-BN-ReLU-Pool-Dense128-ReLU-Dropout-Dense10"
                 if width == 32 else f"width {width}",
        "optimizer": f"Adam(lr={lr}) + cosine",
        "ours_s": ours_s, "torch_s": torch_s,
        "ours_samples_s": samples["ours"], "torch_samples_s": samples["torch"],
        "ours_images_per_s": n / ours_s, "torch_images_per_s": n / torch_s,
        "ours_full_epoch_s": ours_s / batches * steps_full,
        "torch_full_epoch_s": torch_s / batches * steps_full,
        "ratio": ratio, "target": TARGET_RATIO, "ok": bool(ratio <= TARGET_RATIO),
        "torch_threads": torch.get_num_threads(),
    }


def format_train_report(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`run_train_bench`'s result."""
    r = result
    lines = [
        f"Training: {r['model']}, batch {r['batch_size']}, {r['optimizer']}; "
        f"{r['batches']} batches per timed epoch, median of {r['repeats']}",
        "",
        "| | epoch (s) | images/s | 60k-image epoch (s) |",
        "|---|---:|---:|---:|",
        f"| ours | {r['ours_s']:.2f} | {r['ours_images_per_s']:.0f} | {r['ours_full_epoch_s']:.1f} |",
        f"| PyTorch | {r['torch_s']:.2f} | {r['torch_images_per_s']:.0f} | "
        f"{r['torch_full_epoch_s']:.1f} |",
        "",
        f"ours / PyTorch = {r['ratio']:.2f} (target <= {r['target']}): "
        f"{'OK' if r['ok'] else 'MISSED'}",
    ]
    return "\n".join(lines)
