"""The run registry: every comparison run of the tutorial, by name, with its role and its recipe.

A run is a named :class:`RunSpec`: what learns (the tuning policy), the losses (contrastive term,
self-distillation on or off), its **role** in the comparison, and its learning rate per starting
model where one was chosen on dev identities offline.  Registering a run (:func:`register_run`) is
the only edit needed to have it trained, cached, evaluated, reported and plotted by
:func:`hfr_tutorial.experiment.run`; names are public (``metrics.json``, the notebooks, the
README), ``<policy>/<loss>[+distill]``.

Roles (what the summaries and the report compare):

* ``method`` -- the method as the tutorial reports it (one run);
* ``full`` -- full fine-tuning with the method's losses, what the method is compared with;
* ``ablation`` -- a run without one ingredient of another (``ablation_of`` names it);
* ``variant`` -- another reading of the method (a policy or a loss) shown beside it;
* ``oracle`` -- the same network trained from scratch on every modality: a reference that needs
  paired data and compute the method does without (only on the embedded data).

Rates: ``RunSpec.rates`` maps a starting model's recipe name to a fixed rate chosen on dev
(``"stand-in"``: the RGB baseline trained here, rates from ``benchmarks/dev_selection.py``,
``docs/results/dev_selection/selection.md``).  A starting model with no fixed rate for a run
(the official weights) has its rate chosen on dev from a grid by the experiment itself
(:mod:`hfr_tutorial.experiment.recipe`).

Taught in: ``notebooks/05_full_training.ipynb`` (the comparison) and ``02_layer_freezing.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from .train.adapt import AdaptSettings

ROLES: tuple[str, ...] = ("method", "full", "ablation", "variant", "oracle")
STAND_IN = "stand-in"
"""The recipe name of the RGB baseline trained here on the embedded data."""


@dataclass(frozen=True)
class RunSpec:
    """One comparison run: its name, what it trains, its role, and its dev-chosen rate per starting model."""

    name: str
    role: str
    settings: AdaptSettings | None = None  # None for the oracle (trained from scratch, not adapted)
    ablation_of: str | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    color: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"RunSpec {self.name!r}: role {self.role!r} is not one of {ROLES}.")
        if (self.settings is None) != (self.role == "oracle"):
            raise ValueError(f"RunSpec {self.name!r}: an oracle trains from scratch (settings=None); every other run "
                             "adapts the starting model and needs AdaptSettings.")
        if self.role == "ablation" and not self.ablation_of:
            raise ValueError(f"RunSpec {self.name!r}: an ablation names the run it ablates (ablation_of=...).")
        if self.settings is not None and (self.settings.lr is not None or self.settings.epochs is not None):
            raise ValueError(f"RunSpec {self.name!r}: give rates per starting model in `rates` and leave epochs to the "
                             "recipe (AdaptSettings.lr and .epochs must be None here).")

    @property
    def adapts(self) -> bool:
        """Whether the run adapts the starting model (every role but the oracle)."""
        return self.settings is not None

    def settings_at(self, lr: float) -> AdaptSettings:
        """The run's :class:`AdaptSettings` at learning rate ``lr``."""
        if self.settings is None:
            raise ValueError(f"{self.name} trains from scratch; it has no adaptation settings.")
        return replace(self.settings, lr=lr)

    def fixed_rate(self, recipe: str) -> float | None:
        """The rate chosen offline on dev for starting models of ``recipe`` (None: choose on dev now)."""
        return self.rates.get(recipe)


RUNS: dict[str, RunSpec] = {}
"""Every registered run, in registration order (the order of the report's rows and figures)."""


def register_run(spec: RunSpec, *, replace_existing: bool = False) -> RunSpec:
    """Add a run to :data:`RUNS` (and give it its colour, when it names one, in every figure); returns it.

    Raises:
        ValueError: the name is taken (pass ``replace_existing=True`` to change a run), it does not
            say its policy and losses, or an ablation names a run that is not registered.
    """
    from .palette import assign_run_color

    if spec.name in RUNS and not replace_existing:
        raise ValueError(f"A run named {spec.name!r} is registered already; choose another name or pass "
                         "replace_existing=True.")
    if spec.settings is not None:
        expected = spec.settings.name
        if spec.name != expected:
            raise ValueError(f"Run name {spec.name!r} must say its policy and losses: {expected!r} for these settings.")
    if spec.ablation_of is not None and spec.ablation_of not in RUNS:
        raise ValueError(f"Run {spec.name!r} ablates {spec.ablation_of!r}, which is not registered; register it first.")
    RUNS[spec.name] = spec
    if spec.color is not None:
        assign_run_color(spec.name, spec.color)
    return spec


def unregister_run(name: str) -> None:
    """Remove a run (tests register temporary ones)."""
    RUNS.pop(name, None)


def get_run(name: str) -> RunSpec:
    """The registered run ``name`` (a clear error listing the names otherwise)."""
    if name not in RUNS:
        raise ValueError(f"Unknown run {name!r}; choose from {list(RUNS)}.")
    return RUNS[name]


def run_names(*, adapting_only: bool = False) -> list[str]:
    """Registered run names in order (``adapting_only``: without the oracle)."""
    return [n for n, s in RUNS.items() if s.adapts or not adapting_only]


def role_of(role: str) -> str | None:
    """The name of the (first) registered run with ``role`` ("method", "full", "oracle"), or None."""
    return next((n for n, s in RUNS.items() if s.role == role), None)


def comparison_runs(recipe: str = STAND_IN) -> dict[str, AdaptSettings]:
    """``{name: AdaptSettings}`` of every adapting run at its fixed rate for starting models of ``recipe``
    (the stand-in's: what the notebooks load from the cache with :func:`hfr_tutorial.artifacts.load_adapted`)."""
    return {n: s.settings_at(s.rates[recipe]) for n, s in RUNS.items() if s.adapts and recipe in s.rates}


def ablations() -> dict[str, str]:
    """``{ablation: the run it ablates}`` of the registered runs."""
    return {n: s.ablation_of for n, s in RUNS.items() if s.ablation_of}


# The comparison of the tutorial. The rate of every run with distillation was chosen on the dev identities by
# benchmarks/dev_selection.py (docs/results/dev_selection/selection.md: each policy and loss swept over the same
# half-decade rates, the same epochs); a run without distillation is the ablation of the run with it and keeps
# its rate. tests/test_selection.py checks that these rates are the recorded winners.
register_run(RunSpec("paper/infonce+distill", "method", AdaptSettings(policy="paper", contrastive="infonce"),
                     rates={STAND_IN: 3e-2}, color="#1B9E77",
                     note="the paper-policy run whose loss won on dev (dev mean rank-1 0.934 with InfoNCE against "
                          "0.921 with the published pairwise margin loss, each at its best rate, 3e-2)"))
register_run(RunSpec("paper/pairwise+distill", "variant", AdaptSettings(policy="paper", contrastive="pairwise"),
                     rates={STAND_IN: 3e-2}, color="#A6761D", note="the published pairwise margin loss (xEdgeFace)"))
register_run(RunSpec("paper/infonce", "ablation", AdaptSettings(policy="paper", contrastive="infonce", distill_weight=0.0),
                     ablation_of="paper/infonce+distill", rates={STAND_IN: 3e-2}, color="#66C2A5",
                     note="the method without self-distillation"))
register_run(RunSpec("layernorm/infonce+distill", "variant", AdaptSettings(policy="layernorm", contrastive="infonce"),
                     rates={STAND_IN: 3e-1}, color="#C49A00",
                     note="LayerNorms only; the sweep's winner at the top of the ladder (3e-1 after two extensions)"))
register_run(RunSpec("full/infonce+distill", "full", AdaptSettings(policy="full", contrastive="infonce"),
                     rates={STAND_IN: 3e-2}, color="#E7298A", note="full fine-tuning with the method's losses"))
register_run(RunSpec("full/infonce", "ablation", AdaptSettings(policy="full", contrastive="infonce", distill_weight=0.0),
                     ablation_of="full/infonce+distill", rates={STAND_IN: 3e-2}, color="#F1A7CB",
                     note="full fine-tuning without self-distillation"))
register_run(RunSpec("joint/oracle", "oracle", color="#111111",
                     note="the same network trained from scratch on every modality (paired data, the baseline's steps)"))

METHOD_RUN = "paper/infonce+distill"
"""The method as the tutorial reports it."""
FULL_RUN = "full/infonce+distill"
"""Full fine-tuning with the method's losses: what the method is compared with at the same epochs."""
ORACLE_RUN = "joint/oracle"
"""The joint oracle's name."""
