"""One rank of the data-parallel curvature test (tests/test_lanczos.py): started twice by
``torch.multiprocessing.spawn``, each rank with half of the data; results saved for the parent."""

from __future__ import annotations


def problem():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3)
    ).double()
    x = torch.randn(64, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    return model, torch.nn.functional.cross_entropy, x, y


def curvature(model, loss_fn, data, ddp_model=None, steps=12):
    """Sharpness, SLQ density, and monitor records over a few full-batch SGD steps."""
    import torch

    from stability.training import StabilityMonitor, hessian_density, sharpness

    top = sharpness(model, loss_fn, data, k=2, tol=1e-10)
    dens = hessian_density(model, loss_fn, data, probes=3, steps=20)
    trained = ddp_model if ddp_model is not None else model
    opt = torch.optim.SGD(trained.parameters(), lr=0.5, momentum=0.5)
    mon = StabilityMonitor(trained, loss_fn, opt, data, every=4, on_unstable=lambda r: None)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(trained(data[0]), data[1]).backward()
        if ddp_model is None and torch.distributed.is_initialized():
            for p in trained.parameters():  # data-parallel by hand: the mean gradient
                torch.distributed.all_reduce(p.grad)
                p.grad /= torch.distributed.get_world_size()
        opt.step()
        mon.step()
    records = [(r.step, r.loss, r.sharpness, r.ratio) for r in mon.history]
    return {"values": top.values, "nodes": dens.nodes, "weights": dens.weights, "records": records}


def auto_steps(model, loss_fn, data, steps=60):
    """The steps at which a monitor with ``every="auto"`` checks (the time budget is per
    rank; the ranks must still check together)."""
    import time

    import torch

    from stability.training import StabilityMonitor

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    mon = StabilityMonitor(model, loss_fn, opt, data, on_unstable=lambda r: None)
    for t in range(steps):
        opt.zero_grad()
        loss_fn(model(data[0]), data[1]).backward()
        for p in model.parameters():
            torch.distributed.all_reduce(p.grad)
            p.grad /= torch.distributed.get_world_size()
        opt.step()
        if torch.distributed.get_rank() == 1 and t % 7 == 0:
            time.sleep(0.02)  # rank 1 trains slower: its budget differs from rank 0's
        mon.step()
    return [r.step for r in mon.history]


def run(rank: int, world: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)  # fmt: skip
    try:
        model, loss_fn, x, y = problem()
        half = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
        data = (x[half], y[half])
        plain = curvature(model, loss_fn, data)
        model2, _, _, _ = problem()
        ddp = torch.nn.parallel.DistributedDataParallel(model2)
        wrapped = curvature(ddp, loss_fn, data, ddp_model=ddp)
        model3, _, _, _ = problem()
        auto = auto_steps(model3, loss_fn, data)
        torch.save({"plain": plain, "ddp": wrapped, "auto": auto}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
