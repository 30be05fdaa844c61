"""Bootstrap intervals over identities (hfr_tutorial.uncertainty): seeded, exact points, paired differences."""
import numpy as np
import pytest

from hfr_tutorial.evaluate import evaluate_protocols, score_protocols, verification_metrics
from hfr_tutorial.metrics import METRICS, IdentityResampler, ScoredProtocol, bootstrap_intervals, bootstrap_protocols
from hfr_tutorial.uncertainty import eer_from_histograms, error_curves, percentile_interval, tar_from_histograms


def _toy(seed=1, n_id=30, per=4, noise_nir=1.4):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_id, 64))
    ids = np.repeat(np.arange(n_id), 2 * per)
    mods = np.tile(np.repeat(["vis", "nir"], per), n_id)
    noise = np.where(mods[:, None] == "nir", noise_nir, 0.8)
    emb = {"a": centres[ids] + noise * rng.standard_normal((len(ids), 64))}
    emb["b"] = emb["a"] + 0.3 * rng.standard_normal(emb["a"].shape)
    return emb, ids, mods


def test_bootstrap_intervals_over_identities():
    emb, ids, mods = _toy()
    protocols = ("vis->vis", "nir->vis")
    table = bootstrap_intervals(emb, ids, mods, protocols, reference="a", n_boot=300, seed=0)
    again = bootstrap_intervals(emb, ids, mods, protocols, reference="a", n_boot=300, seed=0)
    assert table.equals(again)  # seeded
    for (name, protocol), row in table.iterrows():
        exact = evaluate_protocols(emb[name], ids, mods, (protocol,))[protocol]
        assert row["rank1"] == exact["rank1"] and row["eer"] == exact["eer"]
        assert row["rank1_lo"] <= row["rank1"] <= row["rank1_hi"]
        assert row["rank1_hi"] - row["rank1_lo"] > 0 or row["rank1"] == 1.0
        assert row["eer_lo"] <= row["eer"] + 0.01 and row["eer"] - 0.01 <= row["eer_hi"]
    assert (table.loc["a", ["d_rank1", "d_rank1_lo", "d_rank1_hi", "d_eer_lo", "d_eer_hi"]] == 0).all().all()
    with pytest.raises(KeyError, match="reference"):
        bootstrap_intervals(emb, ids, mods, protocols, reference="c")


def test_binned_eer_and_tar_match_the_exact_figures():
    emb, ids, mods = _toy()
    ps = score_protocols(emb["b"], ids, mods, ("nir->vis",))["nir->vis"]
    edges = np.linspace(ps.scores.min() - 1e-9, ps.scores.max() + 1e-9, 4001)
    gen, _ = np.histogram(ps.scores[ps.same], edges)
    imp, _ = np.histogram(ps.scores[~ps.same], edges)
    exact = verification_metrics(ps.scores, ps.same)
    assert eer_from_histograms(gen[None] * 1.0, imp[None] * 1.0)[0] == pytest.approx(exact["eer"], abs=2e-3)
    assert tar_from_histograms(gen[None] * 1.0, imp[None] * 1.0, 1e-2)[0] == pytest.approx(exact["tar_at_far_1e-2"],
                                                                                         abs=0.02)


def test_paired_differences_are_tighter_and_the_interval_covers_a_known_truth():
    emb, ids, mods = _toy(n_id=60)
    boot = bootstrap_protocols(emb, ids, mods, ("vis->vis", "nir->vis"), n_boot=400, seed=0)
    assert set(boot.samples["a"]["nir->vis"]) == {"rank1", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3"}
    lo, hi = boot.interval("b", "nir->vis", "rank1")
    diff = boot.difference("b", "a", "nir->vis")
    assert diff["value"] == pytest.approx(boot.point["b"]["nir->vis"]["rank1"] - boot.point["a"]["nir->vis"]["rank1"])
    # b is a plus small noise: unpaired, the difference's interval would be about 1.4x b's own width; paired, it is narrower
    assert diff["interval"][1] - diff["interval"][0] < 0.8 * (hi - lo)
    # a model against itself: exactly zero on every resample
    assert boot.difference("a", "a", "vis->vis")["interval"] == [0.0, 0.0]
    assert boot.intervals("a")["vis->vis"]["rank1"][0] <= boot.point["a"]["vis->vis"]["rank1"]


def test_bad_arguments_are_refused():
    emb, ids, mods = _toy()
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_protocols(emb, ids, mods, n_boot=5)
    with pytest.raises(ValueError, match="no embeddings"):
        bootstrap_protocols({}, ids, mods)
    with pytest.raises(ValueError, match="coverage"):
        percentile_interval(np.arange(10.0), level=1.5)
    assert np.isnan(percentile_interval(np.array([np.nan]))[0])


def _resampler_of(ps, counts=None):
    """An IdentityResampler of one protocol; ``counts`` None: the one "resample" that draws every identity once."""
    ids = np.unique(ps.probe_labels)
    counts = np.ones((1, len(ids))) if counts is None else counts
    return IdentityResampler(ScoredProtocol(ps), ids, counts)


def _auc_of_histograms(genuine, impostor):
    """The resampled AUC (metrics.METRICS["auc"]) of given (B, K) genuine and impostor score histograms."""
    emb, ids, mods = _toy()
    resampler = _resampler_of(score_protocols(emb["a"], ids, mods, ("nir->vis",))["nir->vis"])
    resampler.__dict__["curves"] = error_curves(genuine, impostor)  # the FRR/FAR curves the ROC figures read
    return METRICS["auc"].resample(resampler)


def test_binned_auc_and_the_auc_resamples_match_the_exact_figure():
    emb, ids, mods = _toy()
    ps = score_protocols(emb["b"], ids, mods, ("nir->vis",))["nir->vis"]
    exact = verification_metrics(ps.scores, ps.same)["auc"]
    # every identity drawn once: the binned AUC of all faces, within a bin's share of the exact one
    assert METRICS["auc"].resample(_resampler_of(ps))[0] == pytest.approx(exact, abs=1e-3)
    # all genuine above all impostors: 1; identical distributions: 0.5
    assert _auc_of_histograms(np.array([[0, 0, 5.0]]), np.array([[3.0, 0, 0]]))[0] == pytest.approx(1.0)
    assert _auc_of_histograms(np.array([[1.0, 2, 3]]), np.array([[1.0, 2, 3]]))[0] == pytest.approx(0.5)
    boot = bootstrap_protocols(emb, ids, mods, ("nir->vis",), fars=(), n_boot=200, seed=0, auc=True)
    assert set(boot.samples["b"]["nir->vis"]) == {"rank1", "eer", "auc"}
    assert boot.point["b"]["nir->vis"]["auc"] == exact
    lo, hi = boot.interval("b", "nir->vis", "auc")
    assert lo <= exact + 1e-3 and exact - 1e-3 <= hi and hi > lo
    # without auc=True the AUC is not resampled
    plain = bootstrap_protocols(emb, ids, mods, ("nir->vis",), fars=(), n_boot=20, seed=0)
    assert set(plain.samples["b"]["nir->vis"]) == {"rank1", "eer"}


def test_bootstrap_follows_protocol_roles():
    emb, ids, mods = _toy(n_id=20)
    roles = np.where(mods == "vis", "probe", "probe").astype(object)
    last_vis = [np.flatnonzero((ids == i) & (mods == "vis"))[-1] for i in np.unique(ids)]
    roles[last_vis] = "gallery"  # the *last* VIS image is the template here, not the first
    boot = bootstrap_protocols(emb, ids, mods, ("nir->vis", "vis->vis"), fars=(), n_boot=50, roles=roles)
    exact = evaluate_protocols(emb["a"], ids, mods, ("nir->vis", "vis->vis"), roles=roles)
    default = evaluate_protocols(emb["a"], ids, mods, ("nir->vis", "vis->vis"))
    assert boot.point["a"]["vis->vis"]["rank1"] == exact["vis->vis"]["rank1"]
    assert boot.point["a"]["nir->vis"]["eer"] == exact["nir->vis"]["eer"] != default["nir->vis"]["eer"]
