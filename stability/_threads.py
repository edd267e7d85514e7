"""Threads chosen by the size of the work: many small matrix products run on one thread.

On a machine shared with a training job (the package's normal setting) a BLAS or torch call
that spreads a small product over several threads spins them against the other process: the
data check of a 4k-parameter MLP took 548-726 s with the default BLAS threads and 29 s with
one. :func:`limited` runs a block on one BLAS thread (``threadpoolctl``, which sklearn also
uses) and one torch intra-op thread when the products in it are small, and leaves the
threads alone when a product is large enough to gain from them. ``threadpoolctl`` is used
when it is installed (a dependency of the package); without it the block runs unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["PARALLEL_FLOPS", "limited"]

PARALLEL_FLOPS = 5e8
"""Floating-point operations of one product above which several threads pay off."""


_CONTROLLER: list[Any] = []


def _controller() -> Any:
    """One ``ThreadpoolController`` per process: finding the loaded BLAS libraries scans the
    process's libraries (5 ms), too slow to repeat around every small iteration."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _CONTROLLER.append(None)
    return _CONTROLLER[0]


@contextlib.contextmanager
def limited(flops: float, torch_flops: float | None = None) -> Iterator[None]:
    """Run the block on one thread when its products cost fewer than :data:`PARALLEL_FLOPS`
    each (BLAS through threadpoolctl; torch's intra-op threads if torch is already imported);
    unchanged otherwise. ``torch_flops`` sizes torch's products apart from the BLAS ones (a
    Lanczos loop on the host around large network products: one BLAS thread, torch's own)."""
    torch_flops = flops if torch_flops is None else torch_flops
    if flops >= PARALLEL_FLOPS and torch_flops >= PARALLEL_FLOPS:
        yield
        return
    with contextlib.ExitStack() as stack:
        if flops < PARALLEL_FLOPS:
            controller = _controller()
            if controller is not None:
                stack.enter_context(controller.limit(limits=1, user_api="blas"))
        torch = sys.modules.get("torch")
        if torch is not None and torch_flops < PARALLEL_FLOPS:
            before = torch.get_num_threads()
            if before != 1:
                torch.set_num_threads(1)
                stack.callback(torch.set_num_threads, before)
        yield
