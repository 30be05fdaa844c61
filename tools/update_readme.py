"""Write the generated sections of the README and of the book's Studies pages from the committed records.

Each generated section sits between ``<!-- TAG:start -->`` and ``<!-- TAG:end -->`` in one file; the
prose around it is written by hand.  ``PAGES`` says which file holds which sections:

* ``README.md``, ``notebooks``: the table of notebooks, each one's title and warm-cache run times from its
  metadata (``metadata.hfr_tutorial.runtime_fast_min`` / ``runtime_full_min``);
* ``README.md``, ``headline``: the headline table (baseline, the method, full fine-tuning, with
  intervals) from ``docs/results/fast/metrics.json`` (``hfr-tutorial run --preset fast --out
  docs/results/fast``);
* ``docs/studies/main_job.md``, ``results``: every run of that record, the claims and the figures;
* ``docs/studies/seeds.md``, ``seeds``: ``docs/results/seeds/seeds.md`` (``benchmarks/seeds.py``);
* ``docs/studies/policy_study.md``, ``policy``: ``docs/results/policy_study/policy_study.md``
  (``benchmarks/policy_study.py``);
* ``docs/studies/data_efficiency.md``, ``efficiency``: ``docs/results/data_efficiency/data_efficiency.md``
  and its figure (``benchmarks/data_efficiency.py``);
* ``docs/studies/cost.md``, ``bench`` and ``cost112``: ``docs/results/bench.md``
  (``benchmarks/bench_cost.py``) and ``docs/results/cost112/bench.md`` (``benchmarks/bench_cost112.py``);
* ``docs/studies/deployment.md``, ``deploy``: ``docs/results/deploy/bench.md`` (``benchmarks/bench_deploy.py``);
* ``docs/studies/training_speed.md``, ``speed`` and ``speed_amd``: ``docs/results/speed/bench.md`` and
  ``docs/results/speed/amd_epyc_avx2/bench.md`` (``benchmarks/bench_speed.py``);
* ``docs/studies/practice_set.md``, ``calibration`` and ``practice``: ``docs/results/sensor_calibration/calibration.md``
  (``benchmarks/sensor_calibration.py``) and ``docs/results/practice/report.md`` (``hfr-tutorial run --data
  practice --model edgeface_xxs``);
* ``docs/studies/dev_selection.md``, ``selection``, ``choices`` and ``identity``: the dev choices
  (``benchmarks/dev_selection.py``) and the identity checks (``benchmarks/identity_checks.py``).

The fast record's schema is read in one place, ``read_metrics``: a change of ``metrics.json`` is
absorbed there, and both tables read its result.

    python tools/update_readme.py           # rewrite the README and the Studies pages
    python tools/update_readme.py --check   # exit 1 if one is out of date (CI, through tests/test_readme.py)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # hfr_tutorial from this checkout
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"
STUDIES = ROOT / "docs" / "studies"
METRICS = RESULTS / "fast" / "metrics.json"
PROTOCOLS = ("vis->vis", "nir->vis", "thermal->vis")
FIGURES = {  # the main job's figures (docs/results/fast/figures/), in the order the page shows them
    "rank1_by_run.png": "Eval rank-1 of every run, per protocol, with its 95 % interval",
    "roc.png": "ROC curves of the baseline and the method, per protocol",
    "training_curves.png": "Training curves of the adaptation runs",
    "parameter_budget.png": "Trainable parameters of each tuning policy",
    "umap_before_after.png": "UMAP of the evaluation embeddings before and after adaptation",
}


@dataclass
class Run:
    """One row of the results tables: a model of the fast record, its size and its eval rank-1 cells."""

    name: str
    trainable: int
    total: int
    lr: float | None
    rank1: dict[str, str]  # protocol -> "0.789 [0.753, 0.823]"
    train_seconds: float
    train_threads: int | None
    from_cache: bool

    @property
    def trainable_percent(self) -> float:
        return 100 * self.trainable / self.total


@dataclass
class Metrics:
    """What the tables need from ``metrics.json``, whatever its schema (see ``read_metrics``)."""

    runs: list[Run]  # the baseline first
    method: str
    full: str | None
    claims: list[str]  # one Markdown bullet per claim, every figure with its interval
    oracle_note: str | None
    wall_seconds: float
    platform: str
    torch: str


def read_metrics(path: Path = METRICS) -> Metrics:
    """The fast record, read once: the only function that knows the layout of ``metrics.json`` (schema 2,
    written by ``hfr_tutorial.experiment.run``)."""
    from hfr_tutorial.experiment.report import cell
    from hfr_tutorial.experiment.summary import headline_lines

    metrics = json.loads(path.read_text())
    if metrics.get("schema") != 2:
        raise SystemExit(f"{path}: a metrics.json of schema {metrics.get('schema', 1)}; regenerate it with "
                         "`hfr-tutorial run --preset fast` (schema 2).")
    fold = next(iter(metrics["folds"].values()))
    models = {n: r for n, r in fold["models"].items() if r.get("status", "ok") == "ok"}
    start = fold["claims"]["start"]
    runs = []
    for name, r in models.items():
        runs.append(Run(name="RGB baseline" if name == start else name, trainable=r["trainable_params"],
                        total=r["total_params"], lr=r.get("lr"), rank1={p: cell(r, p, "rank1") for p in PROTOCOLS},
                        train_seconds=r["train_seconds"], train_threads=r.get("train_threads"),
                        from_cache=bool(r.get("from_cache"))))
    role = {r.get("role"): n for n, r in models.items()}
    oracle_note = None
    if "oracle" in role:
        config = metrics["experiment"]["config"]
        train = config["train"]
        n_mod = len(config["data"]["modalities"])
        budget = train["oracle_epochs"] * n_mod / train["baseline_epochs"]
        oracle_note = (f"The joint oracle trains from scratch on all {n_mod} modalities for {train['oracle_epochs']} "
                       f"epochs ({budget:.2f}x the baseline's optimisation steps, by rule), "
                       f"{'with' if train['oracle_augment'] else 'without'} augmentation (chosen on dev: "
                       "[dev selection](dev_selection.md)); the identity checks of the synthetic data are on the "
                       "same page.")
    trainable = {n: 100 * r["trainable_params"] / r["total_params"] for n, r in models.items() if n != start}
    return Metrics(runs=runs, method=role["method"], full=role.get("full"),
                   claims=headline_lines(fold["claims"], trainable), oracle_note=oracle_note,
                   wall_seconds=metrics["wall_seconds"], platform=metrics["environment"]["platform"],
                   torch=metrics["environment"]["torch"])


def _label(run: Run, m: Metrics) -> str:
    return f"**{run.name}** (the method)" if run.name == m.method else run.name


def headline_section(m: Metrics) -> str:
    """The README's one results table: the baseline, the method and full fine-tuning, with intervals."""
    keep = {"RGB baseline", m.method, m.full}
    lines = ["| run | trained | VIS→VIS | NIR→VIS | thermal→VIS |", "|---|---:|---:|---:|---:|"]
    for run in m.runs:
        if run.name in keep:
            lines.append(f"| {_label(run, m)} | {run.trainable_percent:.2f} % | "
                         + " | ".join(run.rank1[p] for p in PROTOCOLS) + " |")
    return "\n".join(lines)


def results_section(m: Metrics) -> str:
    """The main job's page: every run, every claim, the figures (paths relative to docs/studies/)."""
    lines = ["Evaluated once, for this report, on identities never used in training or in any choice (gallery: one "
             "VIS image per identity; probes: the other images of each modality). Each cell is rank-1 with its "
             "95 % bootstrap interval over identities; every learning rate was chosen on the dev identities "
             "([dev selection](dev_selection.md)).", "",
             "| run | trainable parameters | lr | VIS→VIS | NIR→VIS | thermal→VIS | train time (threads) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for run in m.runs:
        lines.append(f"| {_label(run, m)} | {run.trainable:,} ({run.trainable_percent:.2f} %) | "
                     f"{f'{run.lr:g}' if run.lr else '-'} | " + " | ".join(run.rank1[p] for p in PROTOCOLS)
                     + f" | {run.train_seconds:.0f} s" + (f" ({run.train_threads})" if run.train_threads else "")
                     + " |")
    lines += ["", *m.claims]
    if m.oracle_note:
        lines.append(f"- {m.oracle_note}")
    trained = sum(1 for r in m.runs if not r.from_cache)
    lines += ["", f"This run took {m.wall_seconds:.0f} s and trained {trained} of its {len(m.runs)} models "
              "(the others came from the cache, trained by earlier commands of this session; the train times are "
              "each model's own, on 2 CPU cores, with the threads where recorded: 1 when two models trained side by side) "
              f"(`{m.platform}`, torch {m.torch}); full report: `docs/results/fast/report.md`."]
    for name, alt in FIGURES.items():
        if (RESULTS / "fast" / "figures" / name).is_file():
            lines += ["", f"![{alt}](../results/fast/figures/{name})"]
    return "\n".join(lines)


def notebooks_section() -> str:
    """The README's table of notebooks: title (from the title cell) and run times (from the metadata)."""
    import nbformat

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from add_badges import is_header
    finally:
        sys.path.pop(0)
    lines = ["| notebook | what it teaches | fast preset, warm cache | full preset |", "|---|---|---:|---:|"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title_cell = next(c for c in nb.cells if c.cell_type == "markdown" and not is_header(c))
        title = title_cell.source.lstrip("# ").split("\n", 1)[0]
        title = title.split("·", 1)[1].strip() if "·" in title else title
        meta = nb.metadata["hfr_tutorial"]
        lines.append(f"| [`{path.stem}`](notebooks/{path.name}) | {title} | ~{meta['runtime_fast_min']} min | "
                     f"~{meta['runtime_full_min']} min |")
    return "\n".join(lines)


def record(*parts: str, title: bool = True, shift: int = 2) -> str | None:
    """A benchmark's Markdown record under docs/results/, its title line dropped (the page has its own), or None."""
    path = RESULTS.joinpath(*parts)
    if not path.is_file():
        return None
    text = path.read_text().strip()
    if not title and text.startswith("# "):
        text = text.split("\n", 1)[1].strip()
    text = re.sub(r"^(#+) ", lambda h: "#" * min(len(h.group(1)) + shift, 6) + " ", text, flags=re.M)
    folder = "/".join(("..", "results", *parts[:-1]))  # images the record names beside itself, seen from docs/studies/
    return re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/|\.\./)([^)]+\))", rf"\g<1>{folder}/\g<2>", text)


def practice_section() -> str | None:
    """The practice-set run (``docs/results/practice/``): its report less the title, figures seen from docs/studies/."""
    return record("practice", "report.md", title=False, shift=1)  # its ## sections sit under the page's ##


def efficiency_section() -> str | None:
    body = record("data_efficiency", "data_efficiency.md", title=False)
    if body and (RESULTS / "data_efficiency.png").is_file():
        body += ("\n\n![Eval rank-1 against the amount of paired data, three models, mean and spread over seeds]"
                 "(../results/data_efficiency.png)")
    return body


def sections() -> dict[Path, dict[str, str | None]]:
    """Every generated section, by file and tag (None: its record is absent, the section is left as it is)."""
    m = read_metrics() if METRICS.is_file() else None
    return {
        README: {"notebooks": notebooks_section(), "headline": headline_section(m) if m else None},
        STUDIES / "main_job.md": {"results": results_section(m) if m else None},
        STUDIES / "seeds.md": {"seeds": record("seeds", "seeds.md", title=False)},
        STUDIES / "policy_study.md": {"policy": record("policy_study", "policy_study.md", title=False)},
        STUDIES / "data_efficiency.md": {"efficiency": efficiency_section()},
        STUDIES / "cost.md": {"bench": record("bench.md"), "cost112": record("cost112", "bench.md")},
        STUDIES / "deployment.md": {"deploy": record("deploy", "bench.md")},
        STUDIES / "training_speed.md": {"speed": record("speed", "bench.md"),
                                        "speed_amd": record("speed", "amd_epyc_avx2", "bench.md")},
        STUDIES / "practice_set.md": {"calibration": record("sensor_calibration", "calibration.md", title=False),
                                      "practice": practice_section()},
        STUDIES / "dev_selection.md": {"selection": record("dev_selection", "selection.md", title=False),
                                       "choices": record("dev_selection", "choices.md", title=False),
                                       "identity": record("identity_checks", "results.md", title=False)},
    }


def put(text: str, tag: str, body: str, path: Path) -> str:
    pattern = re.compile(rf"(<!-- {tag}:start -->)\n.*?(<!-- {tag}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path.relative_to(ROOT)} lacks the <!-- {tag}:start --> / <!-- {tag}:end --> markers: "
                         f"add them where the section belongs")
    return pattern.sub(lambda mt: f"{mt.group(1)}\n{body}\n{mt.group(2)}", text)


def render_all() -> dict[Path, tuple[str, str]]:
    """Each file's (current text, text with its generated sections written)."""
    out = {}
    for path, bodies in sections().items():
        if not path.is_file():
            raise SystemExit(f"{path.relative_to(ROOT)} is missing: it holds the hand-written prose around the "
                             f"sections {sorted(bodies)}; restore it from git")
        current = new = path.read_text()
        for tag, body in bodies.items():
            if body is not None:
                new = put(new, tag, body, path)
        out[path] = (current, new)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    rendered = render_all()
    stale = [path for path, (current, new) in rendered.items() if current != new]
    if args.check:
        if stale:
            print("Out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
                  + "\nRun: python tools/update_readme.py", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.write_text(rendered[path][1])
    print(f"updated {len(stale)} of {len(rendered)} files" + "".join(f"\n  {p.relative_to(ROOT)}" for p in stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
