"""Side-by-side cost measurements: inference per EdgeFace variant, and one training step per tuning policy.

Run: ``python benchmarks/bench_cost.py [--size 64] [--batch 64] [--repeats 5] [--out benchmarks/results]``

Every figure of one table is measured in the same run, on the same machine, interleaved
(round-robin over the candidates, median of the repeats), and reported as a ratio to a reference
candidate so that machine speed cancels out:

* inference: milliseconds per batch of each variant (reference ``edgeface_xxs``); the adapted
  model *is* an EdgeFace-XXS, so its inference cost is the baseline's by construction (checked:
  same parameter count and the same measured time within noise);
* training step (forward + backward + AdamW step) of the adaptation under each tuning policy
  (reference ``full``), with the number of trainable parameters and optimiser-state bytes, and
  the ``paper`` step once more with the teacher run inside the step (as augmenting VIS would need).

It writes ``results.json`` and ``results.md`` (with ``pip freeze``-style versions) under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from hfr_tutorial.config import TrainConfig
from hfr_tutorial.losses import CrossModalInfoNCE, SelfDistillationLoss
from hfr_tutorial.models import count_parameters, create_edgeface, list_variants
from hfr_tutorial.train import adamw
from hfr_tutorial.tuning import POLICIES, apply_policy, trainable_parameters


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_inference(size: int, batch: int, repeats: int, variants: list[str]) -> list[dict]:
    x = torch.randn(batch, 3, size, size)
    models = {v: create_edgeface(v).eval() for v in variants}
    adapted = create_edgeface("edgeface_xxs").eval()
    apply_policy(adapted, "paper")  # what the method changes: which weights were trained, not the graph
    models["edgeface_xxs (adapted by the method)"] = adapted
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):  # round-robin so drifts in machine load hit every candidate alike
        for name, model in models.items():
            with torch.inference_mode():
                times[name] += _time(lambda: model(x), 1)
    ref = statistics.median(times["edgeface_xxs"])
    return [{"model": name, "params": count_parameters(models[name]), "ms_per_batch": 1000 * statistics.median(t),
             "ratio_to_xxs": statistics.median(t) / ref} for name, t in times.items()]


def bench_training(size: int, batch: int, repeats: int) -> list[dict]:
    """One adaptation step per tuning policy, as ``train.adapt_cross_spectral`` runs it: the
    teacher's targets come from the table computed once before training (VIS is not augmented),
    plus the ``paper`` step with a teacher forward pass in every step (what augmenting VIS costs)."""
    config = TrainConfig()
    teacher = create_edgeface(config.variant).eval()
    vis, other = torch.randn(batch, 3, size, size), torch.randn(batch, 3, size, size)
    with torch.no_grad():
        table_targets = teacher(vis)  # stands in for the lookup in the precomputed table
    contrastive = CrossModalInfoNCE(temperature=config.temperature)
    distill = SelfDistillationLoss(config.distill_weight, kind=config.distill)
    runs = [(p, False) for p in POLICIES if p != "frozen"] + [("paper", True)]
    setups = {}
    for policy, teacher_each_step in runs:
        student = create_edgeface(config.variant)
        report = apply_policy(student, policy)
        opt = adamw(trainable_parameters(student), lr=1e-4, weight_decay=config.weight_decay)

        def step(student=student, opt=opt, teacher_each_step=teacher_each_step):
            emb = student(torch.cat([vis, other]))
            if teacher_each_step:
                with torch.no_grad():
                    t = teacher(vis)
            else:
                t = table_targets
            loss = contrastive(emb[:batch], emb[batch:]) + distill(emb[:batch], t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        state_bytes = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                          if torch.is_tensor(v))
        name = f"{policy} (teacher forward every step)" if teacher_each_step else policy
        setups[name] = (step, report, state_bytes)
    times: dict[str, list[float]] = {p: [] for p in setups}
    for _ in range(repeats):
        for policy, (step, _, _) in setups.items():
            times[policy] += _time(step, 1)
    ref = statistics.median(times["full"])
    return [{"policy": p, "trainable": r.trainable, "percent": 100 * r.fraction, "optimizer_state_kb": sb / 1024,
             "ms_per_step": 1000 * statistics.median(times[p]), "ratio_to_full": statistics.median(times[p]) / ref}
            for p, (_, r, sb) in setups.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=[v for v in list_variants() if v != "edgeface_base"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    env = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "processor": platform.processor() or platform.platform()}
    inference = bench_inference(args.size, args.batch, args.repeats, args.variants)
    training = bench_training(args.size, args.batch, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"env": env, "args": {k: str(v) for k, v in vars(args).items()},
                                                       "inference": inference, "training": training}, indent=2))
    lines = [f"# Cost benchmark ({args.size} px, batch {args.batch}, median of {args.repeats}, {env['threads']} threads, "
             f"torch {env['torch']})", "", "| model | params | ms / batch | x EdgeFace-XXS |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['params']:,} | {r['ms_per_batch']:.1f} | {r['ratio_to_xxs']:.2f} |" for r in inference]
    lines += ["", "| tuning policy | trainable | % | optimiser state (KiB) | ms / step | x full |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['policy']} | {r['trainable']:,} | {r['percent']:.2f} | {r['optimizer_state_kb']:.0f} | "
              f"{r['ms_per_step']:.0f} | {r['ratio_to_full']:.2f} |" for r in training]
    text = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
