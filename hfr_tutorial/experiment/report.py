"""The Markdown report of an experiment: what ran, the results with intervals, the claims, the choices, the figures.

One writer for every kind of data and starting model: it reads only ``metrics.json``'s record.

Taught in: ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..metrics import METRICS, metric_label
from .summary import headline_lines


def cell(record: Mapping[str, Any], protocol: str, metric: str) -> str:
    """``0.973 [0.962, 0.981]``: a model's figure on one protocol with its interval when it has one."""
    value = record["protocols"][protocol].get(metric)
    if value is None:
        return "n/a"
    interval = record.get("intervals", {}).get(protocol, {}).get(metric)
    if interval and all(v is not None and np.isfinite(v) for v in interval):
        return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
    return f"{value:.3f}"


def _trainable(record: Mapping[str, Any]) -> str:
    if not record.get("trainable_params"):
        return "0 (frozen)"
    return f"{record['trainable_params']:,} ({100 * record['trainable_params'] / record['total_params']:.2f} %)"


def _what_ran(metrics: Mapping[str, Any]) -> list[str]:
    e = metrics["experiment"]
    d, m, o = e["data"], e["starting_model"], e["overrides"]
    data = (f"layout `{d['root']}` ({d['name']}), protocol `{d['protocol'] or 'default'}`"
            + (f", {len(d['folds'])} folds; tables give the first fold, the fold summary mean ± std"
               if len(d["folds"]) > 1 else "") if d["kind"] == "layout"
            else f"the embedded synthetic faces of the preset (`{d['name']}`)")
    lines = ["## What ran", "", f"- **Data**: {data}."]
    if d.get("subset"):
        s = d["subset"]
        lines.append(f"- **Training subset**: {s['n_identities']} paired identities, {s['images_per_modality']} images "
                     f"per modality (seed {s['seed']}), as many optimisation steps as the whole training split.")
    if d.get("simulated_modalities"):
        lines.append(f"- **Simulated modalities**: {', '.join(d['simulated_modalities'])}"
                     + (" (rendered by the generator)" if d["kind"] == "embedded" else
                        " (made from VIS photos by `hfr_tutorial.data.spectral`: not a real sensor)") + ".")
    lines.append(f"- **Starting model** (the frozen teacher, the student's start and the first row): {m['what']}"
                 + (f" (sha256 {m['sha256'][:12]})" if m.get("sha256") else "") + ".")
    lines.append(f"- **Preset** `{e['preset']}`, seed {e['seed']}, device {metrics['device']}"
                 + (f"; overrides: {', '.join(f'{k} {v}' for k, v in o.items() if v not in (None, False))}"
                    if any(v not in (None, False) for v in o.values()) else "") + f"; wall time "
                 f"{metrics['wall_seconds']:.0f} s (models from the cache count 0 s).")
    for note in metrics.get("notes", []):
        lines.append(f"- **Note**: {note}")
    return lines + [""]


def render_report(metrics: Mapping[str, Any], figure_files: Mapping[str, str]) -> str:
    """The Markdown report of a ``metrics.json`` record and its figures."""
    e = metrics["experiment"]
    lines = [f"# hfr-tutorial report: {e['starting_model']['name']} adapted on {e['data']['name']}", ""]
    lines += _what_ran(metrics)
    first_label, fold = next(iter(metrics["folds"].items()))
    headline = [m for m, spec in METRICS.items() if spec.headline]
    lines += [f"## Results on eval identities (never trained on, never used for a choice){'' if len(metrics['folds']) == 1 else f': fold {first_label}'}",
              "", f"Eval identities: {fold['identities']['eval']}. Brackets: 95 % bootstrap intervals over identities.", ""]
    for protocol in fold["protocols"]:
        lines += [f"### {protocol}", "",
                  "| model | trainable | lr | " + " | ".join(metric_label(m) for m in METRICS) + " |",
                  "|---|---:|---:|" + "---:|" * len(METRICS)]
        for name, r in fold["models"].items():
            if r.get("status", "ok") != "ok" or protocol not in r["protocols"]:
                continue
            lr = r.get("lr")
            lines.append(f"| {name} | {_trainable(r)} | {f'{lr:g}' if lr else '-'} | "
                         + " | ".join(cell(r, protocol, m) for m in METRICS) + " |")
        lines.append("")
    lines += ["## Claims", "", *headline_lines(fold["claims"], {n: 100 * r["trainable_params"] / r["total_params"]
                                                                 for n, r in fold["models"].items()
                                                                 if r.get("status", "ok") == "ok"
                                                                 and r.get("total_params")}), ""]
    lines += ["## Choices made on dev identities", ""]
    for label, f in metrics["folds"].items():
        held = f.get("dev_identities_held_out") or []
        lines.append(f"- fold `{label}`: identities train {f['identities']['train']}, dev {f['identities']['dev']}"
                     + (" (held out from train: the protocol has no dev split)" if held else "")
                     + f", eval {f['identities']['eval']}.")
        for name, r in f["models"].items():
            recipe = r.get("recipe")
            if recipe is None:
                continue
            tried = "; ".join(f"lr {c['lr']:g}: dev mean rank-1 {c['dev_score'][0]:.3f}, AUC {c['dev_score'][1]:.3f}"
                              + (" (refused by the VIS guard)" if c["refused_by_guard"] else "")
                              for c in recipe["candidates"])
            if r.get("status") == "refused":
                lines.append(f"  - `{name}`: **refused**: {r['reason']} ({tried})")
            else:
                lines.append(f"  - `{name}`: lr {r['lr']:g}, {recipe['how']} ({tried}).")
        if len(metrics["folds"]) > 3:
            lines.append("  - (further folds in metrics.json)")
            break
    if len(metrics["folds"]) > 1:
        s = metrics["summary"]
        lines += ["", f"## Mean ± std over {s['n_folds']} folds", "",
                  "| model | protocol | " + " | ".join(metric_label(m) for m in headline) + " |",
                  "|---|---|" + "---:|" * len(headline)]
        for name, by_protocol in s["models"].items():
            for p, st in by_protocol.items():
                lines.append(f"| {name} | {p} | " + " | ".join(f"{st[m]['mean']:.3f} ± {st[m]['std']:.3f}"
                                                             for m in headline if m in st) + " |")
    lines += ["", "## Figures", ""]
    for title, path in figure_files.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)
