"""The whole tutorial as one function: data, baseline, comparison runs, evaluation, report.

:func:`run_pipeline` is what ``python -m hfr_tutorial run`` calls, and what the notebooks walk
through step by step.  It writes to ``out``:

* ``metrics.json`` -- ``{"preset", "seed", "baseline": {...}, "runs": {name: {...}}, "summary"}``;
  the baseline and each run hold ``trainable_params``, ``total_params``, ``train_seconds`` and
  ``protocols``, which maps ``vis->vis``, ``nir->vis`` and ``thermal->vis`` to ``rank1``, ``auc``,
  ``eer``, ``tar_at_far_1e-2`` (and more), measured on identities never used in training;
* ``figures/*.png`` -- rank-1 per run and protocol, ROC curves, UMAP before/after adaptation,
  training curves, the parameter budget of the tuning policies;
* ``report.md`` -- a short report that embeds the figures and tabulates the metrics.

Taught in: ``notebooks/05_full_training.ipynb`` and ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifacts import (ABLATIONS, COMPARISON_RUNS, FULL_RUN, METHOD_RUN, ORACLE_RUN, Artifact, load_adapted,
                        load_baseline, load_faceset, load_oracle)
from .config import Preset, get_preset
from .evaluate import DEFAULT_PROTOCOLS, embed, evaluate_protocols, gap_measures, metrics_table

REPORTED_METRICS = ("rank1", "rank5", "auc", "eer", "tar_at_far_1e-1", "tar_at_far_1e-2", "tar_at_far_1e-3",
                    "n_probes", "n_gallery")


class OutputError(ValueError):
    """``--out`` cannot take the results (not a folder, not writable, or holding results that would be lost)."""


def check_out_dir(out: str | Path) -> Path:
    """Make sure ``out`` is a folder this process can write, before any long work (clear error otherwise)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder. Give a folder for metrics.json, report.md and figures/.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"--out {out} is not writable ({err.strerror or err}). Choose a folder you can write to, "
                          "e.g. --out runs/mine.") from None
    return out


def previous_results(out: str | Path) -> dict[str, Any] | None:
    """The ``metrics.json`` an earlier run left in ``out`` (None when there is none or it is unreadable)."""
    path = Path(out) / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON atomically (a temporary file renamed into place: never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(value), indent=2))
    os.replace(tmp, path)


def evaluate_model(model: Any, eval_set: Any, batch_size: int = 256, progress: bool = False,
                   device: Any = None) -> tuple[np.ndarray, dict]:
    """Embeddings of ``eval_set`` (on ``device``, default where the model is) and the metrics of the three protocols."""
    emb = embed(model, eval_set, batch_size=batch_size, progress=progress, device=device)
    results = evaluate_protocols(emb, eval_set.identities, eval_set.modalities, protocols=DEFAULT_PROTOCOLS)
    tidy = {name: {k: (float(v) if k not in ("n_probes", "n_gallery") else int(v)) for k, v in r.items()
                   if k in REPORTED_METRICS} for name, r in results.items()}
    return emb, tidy


def run_record(artifact: Artifact, protocols: dict, lr: float | None = None) -> dict[str, Any]:
    """The ``metrics.json`` record of one model: parameter counts, training time, its rate and protocol metrics."""
    record = {"trainable_params": artifact.trainable_params, "total_params": artifact.total_params,
              "train_seconds": round(artifact.seconds, 1), "train_threads": artifact.meta.get("threads"),
              "from_cache": artifact.from_cache, "protocols": protocols}
    if lr is not None:
        record["lr"] = float(lr)
    return record


CROSS = ("nir->vis", "thermal->vis")
N_BOOT = 1000
"""Bootstrap resamples of the eval identities behind every interval of the report."""


def gap_recovery(baseline: dict, run: dict) -> dict[str, float]:
    """Share of each cross-modal gap a run closes: (run rank-1 - baseline rank-1) / (VIS - baseline)."""
    vis = baseline["protocols"]["vis->vis"]["rank1"]
    out = {}
    for protocol in CROSS:
        base = baseline["protocols"][protocol]["rank1"]
        gap = vis - base
        out[protocol] = (run["protocols"][protocol]["rank1"] - base) / gap if gap > 0 else float("nan")
    return out


def _claim(value: float, samples: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    from .uncertainty import percentile_interval

    return {"value": float(value), "interval": list(percentile_interval(samples, level))}


def summarize(metrics: dict[str, Any], boot: Any = None) -> dict[str, Any]:
    """The headline figures the tutorial's claims are stated in, each with a paired 95 % interval when ``boot`` is given.

    ``boot`` is a :class:`~hfr_tutorial.uncertainty.Bootstrap` over the eval identities with the
    keys ``baseline`` and the run names; every claim is then ``{"value", "interval"}`` computed on
    the same identity resamples for all models and protocols (paired):

    * ``baseline_gap``: VIS rank-1 minus each cross-modal rank-1 of the baseline;
    * per run: ``vis_change`` (its VIS rank-1 minus the baseline's), ``gap_recovered`` (share of
      each gap closed), ``trainable_percent``; the oracle: ``cross_over_vis`` (its cross-modal
      rank-1 over its own VIS rank-1);
    * ``method_over_full``: the method's cross-modal rank-1 over full fine-tuning's, and
      ``method_minus_full`` the difference;
    * ``distillation_effect``: for each ablation pair, VIS and cross-modal rank-1 with distillation
      minus without.
    """
    base = metrics["baseline"]
    point = {"baseline": base["protocols"], **{n: r["protocols"] for n, r in metrics["runs"].items()}}
    have = boot is not None

    def r1(name: str, protocol: str) -> tuple[float, np.ndarray | None]:
        value = point[name][protocol]["rank1"]
        return value, (boot.samples[name][protocol]["rank1"] if have and name in boot.samples else None)

    def claim(value: float, samples: np.ndarray | None) -> Any:
        return _claim(value, samples) if samples is not None else float(value)

    vis, vis_s = r1("baseline", "vis->vis")
    summary: dict[str, Any] = {"baseline_vis_rank1": vis, "baseline_gap": {}}
    for p in CROSS:
        b, b_s = r1("baseline", p)
        summary["baseline_gap"][p] = claim(vis - b, None if b_s is None else vis_s - b_s)
    for name, run in metrics["runs"].items():
        if name not in point:
            continue
        own, own_s = r1(name, "vis->vis")
        entry: dict[str, Any] = {"trainable_percent": 100 * run["trainable_params"] / run["total_params"],
                                 "vis_change": claim(own - vis, None if own_s is None else own_s - vis_s)}
        if name != ORACLE_RUN:
            entry["gap_recovered"] = {}
            for p in CROSS:
                b, b_s = r1("baseline", p)
                v, v_s = r1(name, p)
                value = (v - b) / (vis - b) if vis > b else float("nan")
                with np.errstate(invalid="ignore", divide="ignore"):
                    samples = None if v_s is None else (v_s - b_s) / (vis_s - b_s)
                entry["gap_recovered"][p] = claim(value, samples)
        else:
            entry["cross_over_vis"] = {}
            for p in CROSS:
                v, v_s = r1(name, p)
                with np.errstate(invalid="ignore", divide="ignore"):
                    entry["cross_over_vis"][p] = claim(v / own if own else float("nan"),
                                                       None if v_s is None else v_s / own_s)
        summary[name] = entry
    if METHOD_RUN in point and FULL_RUN in point:
        summary["method"], summary["full"] = METHOD_RUN, FULL_RUN
        summary["method_over_full"], summary["method_minus_full"] = {}, {}
        for p in ("vis->vis", *CROSS):
            m, m_s = r1(METHOD_RUN, p)
            f, f_s = r1(FULL_RUN, p)
            with np.errstate(invalid="ignore", divide="ignore"):
                summary["method_over_full"][p] = claim(m / max(1e-9, f), None if m_s is None else m_s / f_s)
            summary["method_minus_full"][p] = claim(m - f, None if m_s is None else m_s - f_s)
    effects = {}
    for ablation, full_run in ABLATIONS.items():
        if ablation in point and full_run in point:
            effects[full_run] = {}
            for p in ("vis->vis", *CROSS):
                w, w_s = r1(full_run, p)
                wo, wo_s = r1(ablation, p)
                effects[full_run][p] = claim(w - wo, None if w_s is None else w_s - wo_s)
    if effects:
        summary["distillation_effect"] = effects
    if have:
        summary["intervals"] = {"method": "percentile bootstrap over eval identities, paired across models and "
                                          "protocols", "resamples": boot.n_boot, "level": boot.level,
                                "identities": boot.n_identities}
    return summary


def value_of(claim: Any) -> float:
    """The figure of a summary entry, whether it carries an interval (``{"value", "interval"}``) or not."""
    return float(claim["value"]) if isinstance(claim, dict) else float(claim)


def fmt_claim(claim: Any, scale: float = 1.0, digits: int = 3, sign: bool = False, unit: str = "") -> str:
    """``0.973 [0.962, 0.981]``: a summary entry with its interval, scaled (100 for percent)."""
    spec = f"{'+' if sign else ''}.{digits}f"
    text = f"{value_of(claim) * scale:{spec}}{unit}"
    if isinstance(claim, dict) and all(np.isfinite(claim["interval"])):
        lo, hi = claim["interval"]
        text += f" [{lo * scale:{spec}}, {hi * scale:{spec}}]"
    return text


def run_pipeline(preset: str | Preset | None = None, out: str | Path = "runs/fast", seed: int = 0,
                 runs: Sequence[str] | None = None, progress: bool = True, figures: bool = True,
                 device: str | None = None, overwrite: bool = False, workers: int | None = None) -> dict[str, Any]:
    """Build (or load from the cache) everything, evaluate on unseen identities, write the report.

    Args:
        preset: ``"fast"``, ``"full"`` or a :class:`~hfr_tutorial.config.Preset` (default: ``HFR_PRESET``).
        out: output folder for ``metrics.json``, ``figures/`` and ``report.md``.
        runs: which comparison runs (default: all of :data:`COMPARISON_RUNS` and the oracle).
        device: where the models embed the evaluation images (default: CUDA when present; training
            follows the same rule).
        overwrite: replace the results of an earlier run in ``out`` that this call would drop;
            without it, those earlier runs are kept (merged) when preset and seed agree, and the
            call is refused when they do not.
        workers: on a CPU, how many missing models train side by side, one process each
            (:func:`hfr_tutorial.parallel_build.build_missing`; default ``HFR_BUILD_WORKERS``, else 2
            on two or more cores; 1 trains them one after another in this process).
    Returns:
        The metrics dictionary written to ``metrics.json``.
    """
    from .config import get_device

    preset = get_preset(preset)
    out = Path(out)
    runs = list(runs) if runs is not None else [*COMPARISON_RUNS, ORACLE_RUN]
    unknown = [r for r in runs if r not in COMPARISON_RUNS and r != ORACLE_RUN]
    if unknown or not runs:
        raise ValueError(f"Unknown or no run(s) {unknown or runs}; choose from {[*COMPARISON_RUNS, ORACLE_RUN]}.")
    check_out_dir(out)
    earlier = None if overwrite else previous_results(out)
    kept: dict[str, Any] = {}
    if earlier is not None:
        dropped = [r for r in earlier.get("runs", {}) if r not in runs]
        if dropped and (earlier.get("kind", "embedded") != "embedded" or earlier.get("preset") != preset.name
                        or earlier.get("seed") != seed):
            raise OutputError(f"--out {out} holds results of another experiment (runs {dropped}) that this run would "
                              "drop. Pass --overwrite to replace them, or choose another --out.")
        kept = {r: earlier["runs"][r] for r in dropped}
    eval_device = get_device(None if device in (None, "auto") else device)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    say = print if progress else (lambda *a, **k: None)

    say(f"[1/4] data: synthetic cross-spectral faces, preset {preset.name!r}")
    faceset = load_faceset(preset, seed, progress)
    eval_set = faceset.select(split="eval")
    say(f"      {len(faceset)} images; evaluation on {len(np.unique(eval_set.identities))} unseen identities")
    from .parallel_build import build_missing

    built = build_missing(runs, preset, seed, workers=workers,
                          device=None if device in (None, "auto") else device, progress=progress)

    say("[2/4] RGB baseline")
    baseline = load_baseline(preset, seed, progress)
    base_emb, base_protocols = evaluate_model(baseline.model, eval_set, preset.eval_batch_size, device=eval_device)
    metrics: dict[str, Any] = {"preset": preset.name, "seed": seed, "config": preset.to_dict(),
                               "baseline": run_record(baseline, base_protocols), "runs": {}}
    metrics["baseline"]["from_cache"] = baseline.from_cache and "baseline" not in built
    embeddings = {"baseline": base_emb}
    artifacts = {"baseline": baseline}

    say(f"[3/4] comparison runs: {', '.join(runs)}")
    for name in runs:
        artifact = load_oracle(preset, seed, progress) if name == ORACLE_RUN else \
            load_adapted(COMPARISON_RUNS[name], preset, seed, progress)
        emb, protocols = evaluate_model(artifact.model, eval_set, preset.eval_batch_size, device=eval_device)
        lr = None if name == ORACLE_RUN else COMPARISON_RUNS[name].resolved(preset.train).lr
        metrics["runs"][name] = run_record(artifact, protocols, lr)
        fresh = name in built or not artifact.from_cache
        metrics["runs"][name]["from_cache"] = not fresh
        embeddings[name], artifacts[name] = emb, artifact
        r = {p: protocols[p]["rank1"] for p in DEFAULT_PROTOCOLS}
        say(f"      {name}: rank-1 " + ", ".join(f"{p} {v:.3f}" for p, v in r.items())
            + f" ({f'trained, {artifact.seconds:.0f} s' if fresh else 'cache'})")

    if kept:
        say(f"      kept from the earlier run in {out}: {', '.join(kept)} (pass --overwrite to drop them)")
        metrics["runs"].update(kept)
    say("[4/4] evaluation and report")
    metrics["gap_measures"] = {name: _jsonable(gap_measures(emb, eval_set.identities, eval_set.modalities))
                               for name, emb in embeddings.items()}
    from .uncertainty import bootstrap_protocols

    say(f"      bootstrap intervals: {N_BOOT} resamples of the eval identities, paired across models")
    boot = bootstrap_protocols(embeddings, eval_set.identities, eval_set.modalities, DEFAULT_PROTOCOLS,
                               n_boot=N_BOOT, seed=seed)
    metrics["baseline"]["intervals"] = boot.intervals("baseline")
    for name in embeddings:
        if name != "baseline":
            metrics["runs"][name]["intervals"] = boot.intervals(name)
    metrics["summary"] = summarize(metrics, boot)
    metrics["environment"] = {"python": platform.python_version(), "platform": platform.platform(),
                              **_versions()}
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "metrics.json", metrics)  # kept if a figure fails
    figure_files = write_figures(out / "figures", metrics, embeddings, eval_set, artifacts) if figures else {}
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)  # the whole run, figures included
    write_json(out / "metrics.json", metrics)
    (out / "report.md").write_text(render_report(metrics, figure_files))
    say(f"Done in {metrics['wall_seconds']:.0f} s. Report: {out / 'report.md'}  metrics: {out / 'metrics.json'}")
    return metrics


def _versions() -> dict[str, str]:
    import timm
    import torch

    return {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def write_figures(folder: Path, metrics: dict, embeddings: dict[str, np.ndarray], eval_set: Any,
                  artifacts: dict[str, Artifact]) -> dict[str, str]:
    """Draw the report's figures into ``folder``; returns {title: relative path}."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots
    from .evaluate import score_protocols

    files: dict[str, str] = {}

    def save(fig: Any, name: str, title: str) -> None:
        fig.savefig(folder / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files[title] = f"figures/{name}"

    results = {"baseline": metrics["baseline"]["protocols"], **{n: r["protocols"] for n, r in metrics["runs"].items()}}
    save(plots.plot_metric_bars(metrics_table(results), "rank1"), "rank1_by_run.png", "Rank-1 by run and protocol")
    method = METHOD_RUN if METHOD_RUN in embeddings else None
    curves = {}
    for name in ["baseline", method]:
        if name:
            curves[name] = score_protocols(embeddings[name], eval_set.identities, eval_set.modalities)
    save(plots.plot_roc(curves), "roc.png", "ROC: baseline vs the method")
    if method:
        rng = np.random.default_rng(0)
        ids = np.unique(eval_set.identities)
        keep_ids = rng.choice(ids, size=min(40, len(ids)), replace=False)
        mask = np.isin(eval_set.identities, keep_ids)
        save(plots.plot_umap({"before adaptation (RGB baseline)": embeddings["baseline"][mask],
                              "after adaptation (the method)": embeddings[method][mask]},
                             eval_set.identities[mask], eval_set.modalities[mask], random_state=0),
             "umap_before_after.png", "UMAP of eval embeddings before and after adaptation")
        save(plots.plot_training_curves({n: a.history for n, a in artifacts.items() if n != "baseline" and len(a.history)}),
             "training_curves.png", "Training curves of the adaptation runs")
    budget = {n: (r["trainable_params"], r["total_params"]) for n, r in metrics["runs"].items()}
    save(plots.plot_parameter_budget(budget), "parameter_budget.png", "Trainable parameters per run")
    return files


def _cell(record: dict, protocol: str, metric: str) -> str:
    value = record["protocols"][protocol][metric]
    interval = record.get("intervals", {}).get(protocol, {}).get(metric)
    if interval and all(v is not None and np.isfinite(v) for v in interval):
        return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
    return f"{value:.3f}"


def headline_lines(metrics: dict) -> list[str]:
    """The claims of a run, one sentence each, every figure with its paired 95 % interval (report and README)."""
    s = metrics["summary"]
    lines = [f"- Baseline VIS rank-1 {s['baseline_vis_rank1']:.3f}; modality gap (VIS minus cross-modal rank-1) "
             + ", ".join(f"{p} {fmt_claim(g)}" for p, g in s["baseline_gap"].items()) + "."]
    for name in metrics["runs"]:
        entry = s.get(name)
        if entry is None:
            continue
        if "gap_recovered" in entry:
            rec = ", ".join(f"{p} {fmt_claim(v, 100, 0, unit=' %')}" for p, v in entry["gap_recovered"].items())
            lines.append(f"- `{name}` ({entry['trainable_percent']:.2f} % trainable): gap recovered {rec}; "
                         f"VIS rank-1 change {fmt_claim(entry['vis_change'], sign=True)}.")
        else:
            rel = ", ".join(f"{p} {fmt_claim(v, 100, 0, unit=' %')}" for p, v in entry["cross_over_vis"].items())
            lines.append(f"- `{name}`: cross-modal rank-1 as a share of its own VIS rank-1: {rel}.")
    if "method_over_full" in s:
        lines.append(f"- The method (`{s['method']}`) against full fine-tuning (`{s['full']}`, same losses and epochs, "
                     "its own dev-chosen rate): cross-modal rank-1 "
                     + ", ".join(f"{p} {fmt_claim(s['method_minus_full'][p], sign=True)} "
                                 f"({fmt_claim(s['method_over_full'][p], 100, 0, unit=' %')} of it)" for p in CROSS)
                     + f"; VIS {fmt_claim(s['method_minus_full']['vis->vis'], sign=True)}.")
    for run, effect in s.get("distillation_effect", {}).items():
        lines.append(f"- Self-distillation in `{run}` (with minus without): VIS rank-1 "
                     f"{fmt_claim(effect['vis->vis'], sign=True)}; "
                     + ", ".join(f"{p} {fmt_claim(effect[p], sign=True)}" for p in CROSS) + ".")
    if "intervals" in s:
        i = s["intervals"]
        lines.append(f"- Brackets: 95 % {i['method']} ({i['resamples']} resamples of {i['identities']} identities). "
                     "A difference whose interval contains 0 is not established by this run.")
    return lines


def render_report(metrics: dict, figure_files: dict[str, str]) -> str:
    """The Markdown report: what was run, the metrics table with intervals, the claims, the figures."""
    lines = [f"# hfr-tutorial report (preset `{metrics['preset']}`, seed {metrics['seed']})", "",
             "Cross-spectral adaptation of an RGB EdgeFace model, evaluated on identities never used in training "
             "(gallery: one VIS image per identity; probes: the other images of each modality). Rank-1 with its "
             "95 % bootstrap interval over identities; EER likewise.", "",
             "| run | trainable params | lr | train s | VIS->VIS rank-1 | NIR->VIS rank-1 | thermal->VIS rank-1 | "
             "NIR->VIS EER | thermal->VIS EER |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("baseline", metrics["baseline"]), *metrics["runs"].items()]
    for name, r in rows:
        pct = 100 * r["trainable_params"] / r["total_params"]
        lr = r.get("lr")
        lines.append(f"| {name} | {r['trainable_params']:,} ({pct:.2f} %) | {f'{lr:g}' if lr else '-'} | "
                     f"{r['train_seconds']:.0f} | "
                     + " | ".join(_cell(r, p, "rank1") for p in ("vis->vis", *CROSS)) + " | "
                     + " | ".join(_cell(r, p, "eer") for p in CROSS) + " |")
    lines += ["", "## Headline figures", "", *headline_lines(metrics)]
    lines += ["", f"Wall time {metrics['wall_seconds']:.0f} s (models from the cache count 0 s).", "", "## Figures", ""]
    for title, path in figure_files.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)
