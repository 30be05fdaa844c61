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

from .artifacts import COMPARISON_RUNS, ORACLE_RUN, Artifact, load_adapted, load_baseline, load_faceset, load_oracle
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


def run_record(artifact: Artifact, protocols: dict) -> dict[str, Any]:
    """The ``metrics.json`` record of one model: parameter counts, training time and protocol metrics."""
    return {"trainable_params": artifact.trainable_params, "total_params": artifact.total_params,
            "train_seconds": round(artifact.seconds, 1), "from_cache": artifact.from_cache,
            "protocols": protocols}


def gap_recovery(baseline: dict, run: dict) -> dict[str, float]:
    """Share of each cross-modal gap a run closes: (run rank-1 - baseline rank-1) / (VIS - baseline)."""
    vis = baseline["protocols"]["vis->vis"]["rank1"]
    out = {}
    for protocol in ("nir->vis", "thermal->vis"):
        base = baseline["protocols"][protocol]["rank1"]
        gap = vis - base
        out[protocol] = (run["protocols"][protocol]["rank1"] - base) / gap if gap > 0 else float("nan")
    return out


def summarize(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures the tutorial's targets are stated in."""
    base = metrics["baseline"]
    vis = base["protocols"]["vis->vis"]["rank1"]
    summary: dict[str, Any] = {
        "baseline_vis_rank1": vis,
        "baseline_gap": {p: vis - base["protocols"][p]["rank1"] for p in ("nir->vis", "thermal->vis")},
    }
    for name, run in metrics["runs"].items():
        entry = {"vis_drop": vis - run["protocols"]["vis->vis"]["rank1"],
                 "trainable_percent": 100 * run["trainable_params"] / run["total_params"]}
        if name != ORACLE_RUN:
            entry["gap_recovered"] = gap_recovery(base, run)
        else:
            own = run["protocols"]["vis->vis"]["rank1"]
            entry["cross_over_vis"] = {p: run["protocols"][p]["rank1"] / own if own else float("nan")
                                       for p in ("nir->vis", "thermal->vis")}
        summary[name] = entry
    method, full = metrics["runs"].get("paper/contrastive+distill"), metrics["runs"].get("full/contrastive+distill")
    if method and full:
        summary["method_over_full"] = {p: method["protocols"][p]["rank1"] / max(1e-9, full["protocols"][p]["rank1"])
                                       for p in ("nir->vis", "thermal->vis")}
    return summary


def run_pipeline(preset: str | Preset | None = None, out: str | Path = "runs/fast", seed: int = 0,
                 runs: Sequence[str] | None = None, progress: bool = True, figures: bool = True,
                 device: str | None = None, overwrite: bool = False) -> dict[str, Any]:
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

    say("[2/4] RGB baseline")
    baseline = load_baseline(preset, seed, progress)
    base_emb, base_protocols = evaluate_model(baseline.model, eval_set, preset.eval_batch_size, device=eval_device)
    metrics: dict[str, Any] = {"preset": preset.name, "seed": seed, "config": preset.to_dict(),
                               "baseline": run_record(baseline, base_protocols), "runs": {}}
    embeddings = {"baseline": base_emb}
    artifacts = {"baseline": baseline}

    say(f"[3/4] comparison runs: {', '.join(runs)}")
    for name in runs:
        artifact = load_oracle(preset, seed, progress) if name == ORACLE_RUN else \
            load_adapted(COMPARISON_RUNS[name], preset, seed, progress)
        emb, protocols = evaluate_model(artifact.model, eval_set, preset.eval_batch_size, device=eval_device)
        metrics["runs"][name] = run_record(artifact, protocols)
        embeddings[name], artifacts[name] = emb, artifact
        r = {p: protocols[p]["rank1"] for p in DEFAULT_PROTOCOLS}
        say(f"      {name}: rank-1 " + ", ".join(f"{p} {v:.3f}" for p, v in r.items())
            + f" ({'cache' if artifact.from_cache else f'{artifact.seconds:.0f} s'})")

    if kept:
        say(f"      kept from the earlier run in {out}: {', '.join(kept)} (pass --overwrite to drop them)")
        metrics["runs"].update(kept)
    say("[4/4] evaluation and report")
    metrics["gap_measures"] = {name: _jsonable(gap_measures(emb, eval_set.identities, eval_set.modalities))
                               for name, emb in embeddings.items()}
    metrics["summary"] = summarize(metrics)
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
    method = "paper/contrastive+distill" if "paper/contrastive+distill" in embeddings else None
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


def render_report(metrics: dict, figure_files: dict[str, str]) -> str:
    """The Markdown report: what was run, the metrics table, the targets, the figures."""
    lines = [f"# hfr-tutorial report (preset `{metrics['preset']}`, seed {metrics['seed']})", "",
             "Cross-spectral adaptation of an RGB EdgeFace model, evaluated on identities never used in training "
             "(gallery: one VIS image per identity; probes: the other images of each modality).", "",
             "| run | trainable params | train s | vis->vis rank-1 | nir->vis rank-1 | thermal->vis rank-1 | nir->vis EER | thermal->vis EER |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("baseline", metrics["baseline"]), *metrics["runs"].items()]
    for name, r in rows:
        p = r["protocols"]
        pct = 100 * r["trainable_params"] / r["total_params"]
        lines.append(f"| {name} | {r['trainable_params']:,} ({pct:.2f} %) | {r['train_seconds']:.0f} | "
                     f"{p['vis->vis']['rank1']:.3f} | {p['nir->vis']['rank1']:.3f} | {p['thermal->vis']['rank1']:.3f} | "
                     f"{p['nir->vis']['eer']:.3f} | {p['thermal->vis']['eer']:.3f} |")
    s = metrics["summary"]
    lines += ["", "## Headline figures", "",
              f"- Baseline VIS rank-1 {s['baseline_vis_rank1']:.3f}; modality gap "
              + ", ".join(f"{p} {g:.3f}" for p, g in s["baseline_gap"].items()) + "."]
    for name in metrics["runs"]:
        entry = s[name]
        if "gap_recovered" in entry:
            rec = ", ".join(f"{p} {100 * v:.0f} %" for p, v in entry["gap_recovered"].items())
            lines.append(f"- `{name}` ({entry['trainable_percent']:.2f} % trainable): gap recovered {rec}; "
                         f"VIS rank-1 change {-entry['vis_drop']:+.3f}.")
        else:
            rel = ", ".join(f"{p} {100 * v:.0f} %" for p, v in entry["cross_over_vis"].items())
            lines.append(f"- `{name}`: cross-modal rank-1 as a share of its own VIS rank-1: {rel}.")
    if "method_over_full" in s:
        lines.append("- The method reaches " + ", ".join(f"{p} {100 * v:.0f} %" for p, v in s["method_over_full"].items())
                     + " of full fine-tuning's cross-modal rank-1 at the same budget.")
    lines += ["", f"Wall time {metrics['wall_seconds']:.0f} s (models from the cache count 0 s).", "", "## Figures", ""]
    for title, path in figure_files.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)
