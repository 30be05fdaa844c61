"""Write the README's generated sections from the committed results.

* between ``<!-- results:start -->`` and ``<!-- results:end -->``: the fast preset's results table
  and headline figures, from ``docs/results/fast/metrics.json`` (written by
  ``hfr-tutorial run --preset fast --out docs/results/fast``);
* between ``<!-- bench:start -->`` and ``<!-- bench:end -->``: ``docs/results/bench.md`` (written by
  ``python benchmarks/bench_cost.py --out docs/results/bench``, copied there);
* between ``<!-- deploy:start -->`` and ``<!-- deploy:end -->``: ``docs/results/deploy/bench.md``
  (written by ``python benchmarks/bench_deploy.py``);
* between ``<!-- speed:start -->`` and ``<!-- speed:end -->``: ``docs/results/speed/bench.md``
  (written by ``python benchmarks/bench_speed.py``);
* between ``<!-- cost112:start -->`` and ``<!-- cost112:end -->``: ``docs/results/cost112/bench.md``
  (written by ``python benchmarks/bench_cost112.py``);
* between ``<!-- efficiency:start -->`` and ``<!-- efficiency:end -->``: the table of
  ``docs/results/data_efficiency/data_efficiency.md`` and its figure (written by
  ``python benchmarks/data_efficiency.py``);
* between ``<!-- seeds:start -->`` and ``<!-- seeds:end -->``: ``docs/results/seeds/seeds.md``
  (written by ``python benchmarks/seeds.py``).

    python tools/update_readme.py           # rewrite README.md
    python tools/update_readme.py --check   # exit 1 if README.md is out of date (CI, via tests)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # hfr_tutorial from this checkout
README = ROOT / "README.md"
METRICS = ROOT / "docs" / "results" / "fast" / "metrics.json"
BENCH = ROOT / "docs" / "results" / "bench.md"
DEPLOY = ROOT / "docs" / "results" / "deploy" / "bench.md"
SPEED = ROOT / "docs" / "results" / "speed" / "bench.md"
POLICY = ROOT / "docs" / "results" / "policy_study" / "policy_study.md"
COST112 = ROOT / "docs" / "results" / "cost112" / "bench.md"
SEEDS = ROOT / "docs" / "results" / "seeds" / "seeds.md"
EFFICIENCY = ROOT / "docs" / "results" / "data_efficiency" / "data_efficiency.md"


def results_section(metrics: dict) -> str:
    from hfr_tutorial.pipeline import CROSS, _cell, headline_lines

    rows = [("RGB baseline", metrics["baseline"]), *metrics["runs"].items()]
    s = metrics["summary"]
    lines = ["Evaluated once, for this report, on identities never used in training or in any choice (gallery: one "
             "VIS image per identity; probes: the other images of each modality). Each cell is rank-1 with its "
             "95 % bootstrap interval over identities; every learning rate was chosen on the dev identities "
             "(`docs/results/dev_selection/selection.md`).", "",
             "| run | trainable parameters | lr | VIS→VIS | NIR→VIS | thermal→VIS | train time (threads) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        pct = 100 * r["trainable_params"] / r["total_params"]
        label = f"**{name}** (the method)" if name == s.get("method") else name
        lr = r.get("lr")
        lines.append(f"| {label} | {r['trainable_params']:,} ({pct:.2f} %) | {f'{lr:g}' if lr else '-'} | "
                     + " | ".join(_cell(r, p, "rank1") for p in ("vis->vis", *CROSS))
                     + f" | {r['train_seconds']:.0f} s" + (f" ({r['train_threads']})" if r.get("train_threads") else "")
                     + " |")
    lines += ["", *headline_lines(metrics)]
    oracle = s.get("joint/oracle")
    if oracle:
        train = metrics["config"]["train"]
        n_mod = len(metrics["config"]["data"]["modalities"])
        budget = train["oracle_epochs"] * n_mod / train["baseline_epochs"]
        lines.append(f"- The joint oracle trains from scratch on all {n_mod} modalities for {train['oracle_epochs']} "
                     f"epochs ({budget:.2f}x the baseline's optimisation steps, by rule), "
                     f"{'with' if train['oracle_augment'] else 'without'} augmentation (chosen on dev: "
                     "`docs/results/dev_selection/choices.md`); the identity "
                     "checks of the synthetic data are in `docs/results/identity_checks/results.md` "
                     "(`benchmarks/identity_checks.py`).")
    models = [metrics["baseline"], *metrics["runs"].values()]
    trained = sum(1 for r in models if not r.get("from_cache"))
    lines += ["", f"This run took {metrics['wall_seconds']:.0f} s and trained {trained} of its {len(models)} models "
              "(the others came from the cache, trained by earlier commands of this session; the train times are "
              "each model's own, on 2 CPU cores, with the threads where recorded: 1 when two models trained side by side) "
              f"(`{metrics['environment']['platform']}`, torch {metrics['environment']['torch']}); full report: "
              "`docs/results/fast/report.md`.", "",
              "![UMAP of the evaluation embeddings before and after adaptation](docs/results/fast/figures/umap_before_after.png)"]
    return "\n".join(lines)


def render(text: str) -> str:
    def put(text: str, tag: str, body: str) -> str:
        pattern = re.compile(rf"(<!-- {tag}:start -->\n).*?(\n<!-- {tag}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md lacks the <!-- {tag}:start --> / <!-- {tag}:end --> markers")
        return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)

    if METRICS.is_file():
        text = put(text, "results", results_section(json.loads(METRICS.read_text())))
    if BENCH.is_file():
        text = put(text, "bench", BENCH.read_text().strip())
    if DEPLOY.is_file():
        text = put(text, "deploy", DEPLOY.read_text().strip())
    if SPEED.is_file():
        text = put(text, "speed", SPEED.read_text().strip())
    if POLICY.is_file():  # without its title line: the README gives the section its own heading
        text = put(text, "policy", POLICY.read_text().strip().split("\n", 1)[1].strip())
    if COST112.is_file():
        text = put(text, "cost112", COST112.read_text().strip())
    if EFFICIENCY.is_file():  # without its title line, with the figure it draws
        body = EFFICIENCY.read_text().strip().split("\n", 1)[1].strip()
        text = put(text, "efficiency", body + "\n\n![Eval rank-1 against the amount of paired data, three models, "
                   "mean and spread over seeds](docs/results/data_efficiency.png)")
    if SEEDS.is_file():
        text = put(text, "seeds", SEEDS.read_text().strip().split("\n", 1)[1].strip())
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = README.read_text()
    new = render(current)
    if args.check:
        if new != current:
            print("README.md is out of date: run python tools/update_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
