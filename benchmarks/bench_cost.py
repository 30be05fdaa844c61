"""Side-by-side cost measurements: inference per EdgeFace variant, and one training step per tuning policy.

Run: ``python benchmarks/bench_cost.py [--quick] [--size 64] [--batch 64] [--repeats 5] [--out benchmarks/results]``
(``--quick``: 32 px, batch 4, one repeat, EdgeFace-XXS only, written to a temporary folder unless
``--out`` is given: checks the script; its timings mean nothing).

Every figure of one table is measured in the same run, on the same machine, interleaved
(round-robin over the candidates, median of the repeats), and reported as a ratio to a reference
candidate so that machine speed cancels out:

* inference: milliseconds per batch of each variant (reference ``edgeface_xxs``); the adapted
  model *is* an EdgeFace-XXS, so its inference cost is the baseline's by construction (checked:
  same parameter count and the same measured time within noise);
* training step (forward + backward + AdamW step) of the adaptation under each tuning policy
  (reference ``full``), with the number of trainable parameters and optimiser-state bytes, and
  the ``paper`` step once more with the teacher run inside the step (as augmenting VIS would need).
  The step is the library's: the student under the policy (:func:`hfr_tutorial.tuning.apply_policy`),
  the method's loss (:func:`hfr_tutorial.train.method_loss`), and
  ``optimisation_step(AdaptationStep(...), batch, optimizer)``, what the training loop calls.

It writes ``results.json`` and ``results.md`` (with ``pip freeze``-style versions) under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hfr_tutorial.config import TrainConfig
from hfr_tutorial.environment import describe_environment
from hfr_tutorial.models import count_parameters, create_edgeface, list_variants, normalize
from hfr_tutorial.train import AdaptationStep, AdaptSettings, adamw, method_loss, optimisation_step
from hfr_tutorial.tuning import POLICIES, apply_policy, trainable_parameters

CPU = torch.device("cpu")


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
    gen = torch.Generator().manual_seed(0)
    vis, other = torch.rand(batch, 3, size, size, generator=gen), torch.rand(batch, 3, size, size, generator=gen)
    with torch.no_grad():
        table_targets = teacher(normalize(vis))  # the table of teacher targets, computed once before training
    data = {"vis": vis, "other": other, "label": torch.arange(batch), "vis_index": torch.arange(batch)}
    runs = [(p, False) for p in POLICIES if p != "frozen"] + [("paper", True)]
    setups = {}
    for policy, teacher_each_step in runs:
        settings = AdaptSettings(policy=policy).resolved(config)  # the method's losses, the preset's lambda
        student = create_edgeface(config.variant)
        report = apply_policy(student, policy)
        opt = adamw(trainable_parameters(student), lr=1e-4, weight_decay=config.weight_decay)
        step = (AdaptationStep(student, method_loss(settings, config), teacher=teacher, device=CPU)
                if teacher_each_step else
                AdaptationStep(student, method_loss(settings, config), teacher_targets=table_targets, device=CPU))

        def call(step=step, opt=opt) -> None:
            optimisation_step(step, data, opt)

        call()
        state_bytes = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                          if torch.is_tensor(v))
        name = f"{policy} (teacher forward every step)" if teacher_each_step else policy
        setups[name] = (call, report, state_bytes)
    times: dict[str, list[float]] = {p: [] for p in setups}
    for _ in range(repeats):
        for policy, (call, _, _) in setups.items():
            times[policy] += _time(call, 1)
    ref = statistics.median(times["full"])
    return [{"policy": p, "trainable": r.trainable, "percent": 100 * r.fraction, "optimizer_state_kb": sb / 1024,
             "ms_per_step": 1000 * statistics.median(times[p]), "ratio_to_full": statistics.median(times[p]) / ref}
            for p, (_, r, sb) in setups.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="32 px, batch 4, one repeat, EdgeFace-XXS only")
    parser.add_argument("--size", type=int, default=None, help="image size (default 64; quick: 32)")
    parser.add_argument("--batch", type=int, default=None, help="images per batch (default 64; quick: 4)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 5; quick: 1)")
    parser.add_argument("--variants", nargs="*", default=None,
                        help="EdgeFace variants timed (default every registered one but edgeface_base; quick: xxs)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder (default benchmarks/results; quick: a temporary folder)")
    args = parser.parse_args(argv)
    args.size = args.size or (32 if args.quick else 64)
    args.batch = args.batch or (4 if args.quick else 64)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.variants = args.variants or (["edgeface_xxs"] if args.quick
                                      else [v for v in list_variants() if v != "edgeface_base"])
    if "edgeface_xxs" not in args.variants:
        parser.error(f"--variants {args.variants}: include edgeface_xxs, the reference of the ratios")
    args.out = args.out or (Path(tempfile.mkdtemp(prefix="bench-cost-quick-")) if args.quick
                            else Path("benchmarks/results"))
    torch.manual_seed(0)
    machine = describe_environment()
    env = {"python": machine["python"], "torch": machine["torch"], "threads": machine["threads"],
           "machine": platform.machine(), "processor": machine["cpu"], "environment": machine}
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
