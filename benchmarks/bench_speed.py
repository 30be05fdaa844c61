"""How fast the tutorial trains on this CPU, and what each speed option changes: side by side, in one run.

Run: ``python benchmarks/bench_speed.py [--quick] [--repeats 12] [--out docs/results/speed/bench.json]``

The fast main job spends its time in training steps (forward + backward + AdamW step) of three
kinds, measured here at the fast preset's shapes (64 px, EdgeFace-XXS):

* ``baseline``: the RGB recogniser from scratch (batch 64, CosFace head over 400 identities;
  the joint oracle takes the same step);
* ``method``: one adaptation step of ``paper/infonce+distill`` (32 VIS + 32 NIR/thermal images,
  InfoNCE, distillation to cached teacher embeddings);
* ``full``: the same step with every parameter trainable (``full/infonce+distill``).

Each is the library's own step, not a copy: :class:`~hfr_tutorial.train.RecognizerStep` or
:class:`~hfr_tutorial.train.AdaptationStep` (the student under the run's tuning policy,
:func:`~hfr_tutorial.train.method_loss` of the registered run's settings), updated by
:func:`~hfr_tutorial.train.optimisation_step`, the function the training loop calls.

Each is timed under each option, **interleaved** (one call per candidate in turn, the order rotating
every round; the median of the rounds), so machine drift hits every candidate alike and only the
ratios matter:

* ``timm convolutions``: the code before the small-map change (every depthwise convolution a
  plain ``nn.Conv2d``), the reference of the ratios;
* ``small-map depthwise``: :class:`hfr_tutorial.models.SmallMapDepthwiseConv2d` (what
  :func:`~hfr_tutorial.models.create_edgeface` builds now);
* ``+ channels_last``: the same with model and input in ``torch.channels_last`` memory format;
* ``+ bf16 autocast``: the forward pass under ``torch.autocast("cpu", torch.bfloat16)``;
* ``+ 1 thread``: ``torch.set_num_threads(1)`` instead of the machine's cores;
* ``+ torch.compile``: the model compiled with the default inductor backend, for the baseline's
  step only (compiling takes minutes per graph; not in ``--quick``); its compile time is reported.

Then the whole machine: one process with a thread per core against one 1-thread process per core
side by side (what :mod:`hfr_tutorial.parallel_build` does with the comparison's models), as
training steps per second of the machine, the two set-ups alternating.

The input pipeline is measured beside them: seconds per batch of the augmented loader (baseline)
and of the pair loader (adaptation) with no model, and a stretch of baseline steps fed by a loader
with ``num_workers`` 0 against 1 (a worker process overlaps loading with compute, if a core is free).

It writes the JSON (machine, settings, rows) and a Markdown table next to it (``bench.md``, the
README's ``<!-- speed -->`` section via ``tools/update_readme.py``).  ``--quick`` (3 rounds at 32 px,
no compile, smoke-sized data, written to a temporary folder unless ``--out`` is given) checks the
script in under a minute; its timings mean little.  Time nothing else on the machine meanwhile.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hfr_tutorial.config import TrainConfig, get_preset  # noqa: E402
from hfr_tutorial.environment import machine_description  # noqa: E402
from hfr_tutorial.models import EMBEDDING_DIM, create_edgeface, normalize, use_small_map_depthwise  # noqa: E402
from hfr_tutorial.models.heads import make_head  # noqa: E402
from hfr_tutorial.runs import FULL_RUN, METHOD_RUN, get_run  # noqa: E402
from hfr_tutorial.train import AdaptationStep, RecognizerStep, adamw, method_loss, optimisation_step  # noqa: E402
from hfr_tutorial.tuning import apply_policy, trainable_parameters  # noqa: E402

OPTIONS = ("timm convolutions", "small-map depthwise", "+ channels_last", "+ bf16 autocast", "+ 1 thread",
           "+ torch.compile")
REFERENCE = "timm convolutions"
CPU = torch.device("cpu")


class BF16Forward(nn.Module):
    """A recogniser's forward pass under bfloat16 autocast on the CPU, embeddings back in float32 (the margin
    head and its loss in float32): what :class:`~hfr_tutorial.train.AdaptationStep` does with ``bf16=True``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(x).float()


def make_step(kind: str, option: str, *, size: int, batch: int, classes: int, seed: int = 0) -> Callable[[], None]:
    """A closure running one training step of ``kind`` under ``option`` on fixed random images.

    The step is the library's: :class:`~hfr_tutorial.train.RecognizerStep` (``baseline``) or
    :class:`~hfr_tutorial.train.AdaptationStep` with the run's :func:`~hfr_tutorial.train.method_loss`
    (``method``: ``paper/infonce+distill``; ``full``: ``full/infonce+distill``), the student under the
    run's tuning policy, teacher targets looked up in a table as in training, and one update by
    :func:`~hfr_tutorial.train.optimisation_step`, the function the training loop calls.
    """
    cfg = TrainConfig()
    torch.manual_seed(seed)
    model = create_edgeface(cfg.variant, seed=seed)
    if option == REFERENCE:
        use_small_map_depthwise(model, enabled=False)
    channels_last = option == "+ channels_last"
    bf16 = option == "+ bf16 autocast"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(seed)

    def images(n: int) -> torch.Tensor:  # in [0, 1], as the loaders give them (the step normalises)
        x = torch.rand(n, 3, size, size, generator=generator)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    if kind == "baseline":
        head = make_head(cfg.head, EMBEDDING_DIM, classes, cfg.head_scale, cfg.head_margin)
        params = [*model.parameters(), *head.parameters()]
        data: Any = (images(batch), torch.randint(0, classes, (batch,), generator=generator))
        model.train()
        forward: nn.Module = torch.compile(model) if option == "+ torch.compile" else model
        train_step: Any = RecognizerStep(BF16Forward(forward) if bf16 else forward, head, device=CPU)
    else:
        spec = get_run(METHOD_RUN if kind == "method" else FULL_RUN)
        settings = spec.settings.resolved(cfg)  # type: ignore[union-attr]
        teacher = copy.deepcopy(model).eval()
        apply_policy(model, settings.policy)
        params = list(trainable_parameters(model))
        half = batch // 2
        x = images(batch)
        with torch.no_grad():
            targets = teacher(normalize(x[:half]))  # the table of teacher targets, computed once
        data = {"vis": x[:half], "other": x[half:], "label": torch.arange(half), "vis_index": torch.arange(half)}
        model.train()
        forward = torch.compile(model) if option == "+ torch.compile" else model
        train_step = AdaptationStep(forward, method_loss(settings, cfg), teacher_targets=targets, device=CPU,
                                    bf16=bf16)
    optimizer = adamw(params, lr=1e-3, weight_decay=cfg.weight_decay)
    threads = 1 if option == "+ 1 thread" else torch.get_num_threads()

    def step() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            optimisation_step(train_step, data, optimizer)
        finally:
            torch.set_num_threads(previous)

    return step


def interleaved(candidates: dict[str, Callable[[], None]], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each candidate: ``rounds`` rounds, one call each, the order rotating."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def bench_steps(options: list[str], rounds: int, kinds: tuple[str, ...] = ("baseline", "method", "full"),
                size: int = 64, warmup: int = 2) -> tuple[list[dict], dict]:
    """One row per (step kind, option): median milliseconds and the speed relative to timm's convolutions."""
    rows, compile_seconds = [], {}
    for kind in kinds:
        batch = 64
        candidates = {}
        for option in options:
            if option == "+ torch.compile" and kind != "baseline":
                continue  # compiling takes minutes per graph; one step kind shows what it buys
            t0 = time.perf_counter()
            fn = make_step(kind, option, size=size, batch=batch, classes=400)
            if option == "+ torch.compile":
                fn()  # the first call compiles
                compile_seconds[kind] = round(time.perf_counter() - t0, 1)
            candidates[option] = fn
        times = interleaved(candidates, rounds, warmup)
        ref = statistics.median(times[REFERENCE])
        for option in candidates:
            med = statistics.median(times[option])
            rows.append({"step": kind, "option": option, "ms": round(1000 * med, 1),
                         "speed_vs_timm": round(ref / med, 3), "rounds": rounds})
            print(f"  {kind:9s} {option:22s} {1000 * med:8.1f} ms  x{ref / med:.2f}")
    return rows, compile_seconds


_WORKER = """
import sys, time, torch
sys.path.insert(0, {bench!r})
torch.set_num_threads({threads})
import bench_speed
step = bench_speed.make_step({kind!r}, "small-map depthwise", size={size}, batch=64, classes=400)
step()
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # start together
t0 = time.perf_counter()
for _ in range({steps}):
    step()
print(time.perf_counter() - t0)
"""


def _processes(kind: str, n: int, threads: int, steps: int, size: int) -> float:
    """Wall seconds for ``n`` processes (``threads`` each) to take ``steps`` steps each, started together."""
    import subprocess

    code = _WORKER.format(bench=str(Path(__file__).resolve().parent), threads=threads, kind=kind, size=size,
                          steps=steps)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"a side-by-side worker failed (exit {proc.returncode})")
    return time.perf_counter() - t0


def bench_side_by_side(kind: str, steps: int, rounds: int, size: int) -> list[dict]:
    """One process with every core's thread against as many 1-thread processes side by side (what
    :mod:`hfr_tutorial.parallel_build` does): training steps per second of the machine, alternating."""
    cores = max(1, torch.get_num_threads())
    one, many = [], []
    for r in range(rounds):
        for setup in (("one", "many") if r % 2 == 0 else ("many", "one")):
            if setup == "one":
                one.append(_processes(kind, 1, cores, steps, size) / steps)
            else:
                many.append(_processes(kind, cores, 1, steps, size) / (steps * cores))
    a, b = statistics.median(one), statistics.median(many)
    rows = [{"what": f"{kind} steps, 1 process x {cores} threads: ms per step of the machine", "ms": round(1000 * a, 1)},
            {"what": f"{kind} steps, {cores} processes x 1 thread side by side: ms per step of the machine",
             "ms": round(1000 * b, 1), "speed_vs_one_process": round(a / b, 3)}]
    for row in rows:
        print(f"  {row['what']:72s} {row['ms']:8.1f} ms")
    return rows


def bench_input(faceset: Any, steps: int, rounds: int) -> list[dict]:
    """The loaders alone, and baseline steps fed by a loader with 0 or 1 worker processes."""
    cfg = TrainConfig()
    train = faceset.select(split="train")
    vis = train.select(modality="vis")
    rows = []

    def drain(loader: Any, n: int) -> float:
        t0 = time.perf_counter()
        for i, _ in enumerate(loader):
            if i + 1 >= n:
                break
        return (time.perf_counter() - t0) / n

    for name, make in (("augmented loader (baseline), per batch of 64",
                        lambda: vis.loader(64, shuffle=True, augment=True, seed=0, epoch=0, drop_last=True)),
                       ("pair loader (adaptation), per batch of 32 pairs",
                        lambda: train.pair_loader(32, seed=0, epoch=0, pairs_per_identity=cfg.adapt_pairs_per_identity,
                                                  modalities=("nir", "thermal"), drop_last=True))):
        per = statistics.median(drain(make(), steps) for _ in range(rounds))
        rows.append({"what": name, "ms": round(1000 * per, 2)})
        print(f"  {name:50s} {1000 * per:8.2f} ms")
    model = create_edgeface(cfg.variant)
    head = make_head(cfg.head, EMBEDDING_DIM, len(set(vis.identities.tolist())), cfg.head_scale, cfg.head_margin)
    optimizer = adamw([*model.parameters(), *head.parameters()], lr=1e-3, weight_decay=cfg.weight_decay)
    train_step = RecognizerStep(model, head, device=CPU)
    model.train()

    def fed(workers: int) -> float:
        loader = vis.loader(64, shuffle=True, augment=True, seed=0, epoch=0, drop_last=True, num_workers=workers)
        t0 = time.perf_counter()
        for i, batch in enumerate(loader):
            optimisation_step(train_step, batch, optimizer)
            if i + 1 >= steps:
                break
        return (time.perf_counter() - t0) / steps

    times_0: list[float] = []
    times_1: list[float] = []
    for r in range(rounds):
        for w in ((0, 1) if r % 2 == 0 else (1, 0)):
            (times_0 if w == 0 else times_1).append(fed(w))
    for w, t in ((0, times_0), (1, times_1)):
        rows.append({"what": f"baseline step fed by the loader, num_workers={w}", "ms": round(1000 * statistics.median(t), 1)})
        print(f"  {rows[-1]['what']:50s} {rows[-1]['ms']:8.1f} ms")
    return rows


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"Training speed on {m['cpu']} with {m['threads']} threads (torch {m['torch']}), measured side by side in one "
             f"run of `python benchmarks/bench_speed.py` ({result['date']}): one training step at {result['size']} px, median of "
             f"{result['rounds']} interleaved rounds; x = speed relative to timm's convolutions (higher is faster).", "",
             "| option | " + " | ".join(f"{k} step" for k in result["kinds"]) + " |",
             "|---|" + "---:|" * len(result["kinds"])]
    by = {(r["step"], r["option"]): r for r in result["steps"]}
    for option in result["options"]:
        cells = [f"{by[(k, option)]['ms']:.0f} ms (x{by[(k, option)]['speed_vs_timm']:.2f})" if (k, option) in by
                 else "not measured" for k in result["kinds"]]
        lines.append(f"| {option} | " + " | ".join(cells) + " |")
    if result.get("compile_seconds"):
        cache = ("a fresh inductor cache" if result.get("inductor_cache") == "fresh"
                 else "inductor's on-disk cache left by an earlier run, so not a first compilation")
        lines += ["", "torch.compile's first call (compilation) took " + ", ".join(
            f"{s:.0f} s ({k})" for k, s in result["compile_seconds"].items()) + f", with {cache}."]
    lines += ["", "| input pipeline | ms |", "|---|---:|"]
    lines += [f"| {r['what']} | {r['ms']:.1f} |" for r in result["input"]]
    if result.get("side_by_side"):
        lines += ["", "| the whole machine | ms per step | x one process |", "|---|---:|---:|"]
        lines += [f"| {r['what'].split(': ')[0]} | {r['ms']:.1f} | {r.get('speed_vs_one_process', 1.0):.2f} |"
                  for r in result["side_by_side"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds at 32 px, no compile, smoke-sized data (< 1 min)")
    parser.add_argument("--repeats", type=int, default=12, help="interleaved rounds per candidate (default 12)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default docs/results/speed/bench.json; a temporary file with --quick)")
    args = parser.parse_args(argv)
    import os

    # a fresh inductor cache, so torch.compile's reported time is a first compilation (an earlier run's
    # on-disk cache cut it from minutes to seconds)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give a whole number >= 1")
    out = args.out or (Path(tempfile.mkdtemp()) / "bench.json" if args.quick else ROOT / "docs/results/speed/bench.json")
    rounds = 3 if args.quick else args.repeats
    options = [o for o in OPTIONS if not (args.quick and o == "+ torch.compile")]
    kinds = ("baseline", "method") if args.quick else ("baseline", "method", "full")
    print(f"training steps ({len(options)} options x {len(kinds)} kinds, {rounds} rounds)")
    t0 = time.perf_counter()
    size = 32 if args.quick else 64
    steps, compile_seconds = bench_steps(options, rounds, kinds, size=size, warmup=1 if args.quick else 2)
    print("input pipeline")
    from hfr_tutorial.artifacts import load_faceset
    faceset = load_faceset(get_preset("smoke" if args.quick else "fast"), progress=False)
    input_rows = bench_input(faceset, steps=4 if args.quick else 20, rounds=1 if args.quick else 3)
    print("side by side")
    side_rows = bench_side_by_side("baseline", steps=3 if args.quick else 30, rounds=1 if args.quick else 3, size=size)
    result = {"machine": machine_description(torch.get_num_threads()), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "quick": args.quick, "size": size, "rounds": rounds, "options": options, "kinds": list(kinds), "steps": steps,
              "compile_seconds": compile_seconds, "inductor_cache": "fresh", "input": input_rows, "side_by_side": side_rows,
              "seconds": round(time.perf_counter() - t0, 1)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    md = to_markdown(result)
    out.with_name("bench.md").write_text(md + "\n")
    print(md)
    print(f"wrote {out} and {out.with_name('bench.md')} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
