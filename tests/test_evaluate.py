"""Evaluation: metrics against independent computations and hand-worked cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hfr_tutorial import evaluate as ev

# ---------------------------------------------------------------------------------------------
# Helpers: plain computations the library must agree with
# ---------------------------------------------------------------------------------------------


def tied_scores(seed: int, n: int = 600, levels: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Scores on a coarse grid (many ties) with genuine pairs shifted up."""
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.3
    raw = rng.normal(size=n) + 1.2 * same
    return np.round(raw * levels / 4) / (levels / 4), same


def loop_operating_points(scores: np.ndarray, same: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, FAR, TAR) for every distinct score and one above all, by counting."""
    gen, imp = scores[same], scores[~same]
    points = [(math.inf, 0.0, 0.0)]
    for t in np.unique(scores):
        points.append((float(t), float(np.sum(imp >= t)) / imp.size, float(np.sum(gen >= t)) / gen.size))
    return points


def loop_tar_at_far(scores, same, far):
    return max(tar for _, f, tar in loop_operating_points(scores, same) if f <= far)


def mann_whitney_auc(scores, same):
    gen, imp = scores[same], scores[~same]
    wins = (gen[:, None] > imp[None, :]).sum() + 0.5 * (gen[:, None] == imp[None, :]).sum()
    return wins / (gen.size * imp.size)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tar_at_far_matches_a_counting_loop_on_tied_scores(seed):
    scores, same = tied_scores(seed)
    assert np.unique(scores).size < scores.size / 5  # the test really has ties
    m = ev.verification_metrics(scores, same, fars=(0.3, 1e-1, 1e-2, 1e-3))
    for far in (0.3, 1e-1, 1e-2, 1e-3):
        key = ev.far_key(far)
        assert m[key] == pytest.approx(loop_tar_at_far(scores, same, far), abs=1e-12), key
        # the reported threshold really gives that operating point
        point = ev.apply_threshold(scores, same, m[key.replace("tar_at", "threshold_at")])
        assert point["far"] <= far + 1e-12
        assert point["tar"] == pytest.approx(m[key], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_auc_matches_sklearn_and_mann_whitney_with_ties(seed):
    scores, same = tied_scores(seed)
    m = ev.verification_metrics(scores, same)
    assert m["auc"] == pytest.approx(roc_auc_score(same, scores), abs=1e-12)
    assert m["auc"] == pytest.approx(mann_whitney_auc(scores, same), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 4])
def test_eer_lies_where_far_and_frr_cross(seed):
    scores, same = tied_scores(seed)
    eer = ev.verification_metrics(scores, same)["eer"]
    points = loop_operating_points(scores, same)  # thresholds high -> low
    frr = [1 - tar for _, _, tar in points]
    far = [f for _, f, _ in points]
    i = next(k for k in range(len(points)) if frr[k] <= far[k])
    assert far[i - 1] - 1e-12 <= eer <= far[i] + 1e-12
    assert frr[i] - 1e-12 <= eer <= frr[i - 1] + 1e-12


def test_eer_hand_worked_exact_crossing():
    # genuine 0.9 0.8 0.3, impostor 0.7 0.2 0.1: at threshold 0.7 FAR = FRR = 1/3
    m = ev.verification_metrics([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0])
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["eer_threshold"] == pytest.approx(0.7)
    assert m["auc"] == pytest.approx(8 / 9)
    assert m["tar_at_far_1e-1"] == pytest.approx(2 / 3)  # threshold 0.8 accepts no impostor


def test_eer_hand_worked_interpolated():
    # genuine 0.9 0.8 0.4, impostor 0.6 0.1.  Between thresholds 0.8 (FAR 0, FRR 1/3) and
    # 0.6 (FAR 1/2, FRR 1/3) FAR reaches FRR = 1/3 two thirds of the way along.
    m = ev.verification_metrics([0.9, 0.8, 0.4, 0.6, 0.1], [True, True, True, False, False])
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["eer_threshold"] == pytest.approx(0.8 + 2 / 3 * (0.6 - 0.8))


def test_perfect_and_inverted_scores():
    perfect = ev.verification_metrics([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert perfect["auc"] == 1.0 and perfect["eer"] == 0.0 and perfect["tar_at_far_1e-3"] == 1.0
    inverted = ev.verification_metrics([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    assert inverted["auc"] == 0.0 and inverted["eer"] == 1.0 and inverted["tar_at_far_1e-1"] == 0.0
    assert math.isfinite(inverted["threshold_at_far_1e-1"])  # JSON-safe even when nothing is accepted


def test_dev_threshold_applied_unchanged_to_eval_hand_worked():
    dev_imp = np.round(np.arange(1, 11) / 10, 2)  # 0.1 ... 1.0
    dev_scores = np.r_[dev_imp, 0.95, 0.85, 0.5]
    dev_same = np.r_[np.zeros(10, bool), np.ones(3, bool)]
    # FAR <= 0.2 allows two impostors (0.9 and 1.0): the lowest such threshold is 0.85
    threshold = ev.threshold_at_far(dev_scores, dev_same, 0.2)
    assert threshold == pytest.approx(0.85)
    out = ev.apply_threshold([0.86, 0.3, 0.9, 0.7], [False, False, True, True], threshold)
    assert out == pytest.approx({"threshold": 0.85, "far": 0.5, "tar": 0.5, "frr": 0.5})


def test_dev_eval_rule_reports_the_eval_rates_it_actually_gives():
    rng = np.random.default_rng(5)
    def draw(n):
        same = rng.random(n) < 0.2
        return rng.normal(size=n) + 2.0 * same, same
    dev, eval_ = draw(3000), draw(3000)
    threshold = ev.threshold_at_far(*dev, 1e-2)
    assert threshold in set(dev[0].tolist())  # chosen among dev scores, not eval ones
    out = ev.apply_threshold(*eval_, threshold)
    scores, same = eval_
    assert out["far"] == np.mean(scores[~same] >= threshold)
    assert out["tar"] == np.mean(scores[same] >= threshold)
    assert 0.0 < out["far"] < 0.03  # near the target, but measured, not forced to it


def test_verification_input_errors():
    with pytest.raises(ValueError, match="different lengths"):
        ev.verification_metrics([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="both genuine and impostor"):
        ev.verification_metrics([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="NaN"):
        ev.verification_metrics([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="far must be"):
        ev.threshold_at_far([0.1, 0.2], [True, False], 2.0)


def test_decidability_hand_worked():
    # means 2 and 0, population variances 1 and 1 -> d' = 2 / 1
    assert ev.decidability([1.0, 3.0], [-1.0, 1.0]) == pytest.approx(2.0)
    assert ev.decidability([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert ev.decidability([2.0], [1.0]) == math.inf


# ---------------------------------------------------------------------------------------------
# Identification
# ---------------------------------------------------------------------------------------------


def test_identification_protocol_gallery_is_first_vis_image_closed_set():
    identities = np.array([1, 1, 2, 2, 2, 3, 1])
    modalities = np.array(["nir", "vis", "vis", "vis", "nir", "nir", "vis"])
    gallery, probes = ev.identification_protocol(identities, modalities, "nir")
    assert gallery.tolist() == [1, 2]  # id 3 has no VIS image: not enrolled
    assert probes.tolist() == [0, 4]  # id 3's NIR image is left out (closed set)
    gallery, probes = ev.identification_protocol(identities, modalities, "vis")
    assert gallery.tolist() == [1, 2]
    assert probes.tolist() == [3, 6]  # every VIS image except the gallery ones


def test_identification_protocol_errors_name_the_problem():
    identities = np.array([1, 2, 1, 2])
    modalities = np.array(["vis", "vis", "nir", "nir"])
    with pytest.raises(ValueError, match="Unknown probe modality 'thermal'"):
        ev.identification_protocol(identities, modalities, "thermal")
    with pytest.raises(ValueError, match="no probes"):
        ev.identification_protocol(identities, modalities, "vis")  # one VIS image per identity
    with pytest.raises(ValueError, match="differ in length"):
        ev.identification_protocol(identities[:3], modalities, "nir")
    with pytest.raises(ValueError, match="probe->gallery"):
        ev.parse_protocol("nir")


def test_rank_and_cmc_hand_worked():
    gallery = np.array([10, 20, 30])
    probes = np.array([10, 20, 30])
    sim = np.array([[0.9, 0.1, 0.2],  # mate first: rank 1
                    [0.5, 0.4, 0.3],  # mate second: rank 2
                    [0.8, 0.7, 0.6]])  # mate last: rank 3
    assert ev.probe_ranks(sim, gallery, probes).tolist() == [1, 2, 3]
    assert ev.cmc_curve(sim, gallery, probes) == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert ev.rank_k(sim, gallery, probes, ks=(1, 2, 5)) == pytest.approx({1: 1 / 3, 2: 2 / 3, 5: 1.0})
    assert ev.cmc_curve(sim, gallery, probes, max_rank=5) == pytest.approx([1 / 3, 2 / 3, 1, 1, 1])


def test_rank_ties_count_against_the_probe_and_best_template_counts():
    assert ev.probe_ranks([[0.5, 0.5, 0.1]], [10, 20, 30], [10]).tolist() == [2]
    # identity 10 has two templates: the better one (0.6) beats identity 20's 0.5
    assert ev.probe_ranks([[0.1, 0.5, 0.6]], [10, 20, 10], [10]).tolist() == [1]
    # a collapsed model (all scores equal) gets rank-1 = 0, not 1
    assert ev.rank_k(np.ones((4, 4)), [1, 2, 3, 4], [1, 2, 3, 4], ks=(1,))[1] == 0.0


def test_rank_k_matches_argsort_loop_on_random_scores():
    rng = np.random.default_rng(0)
    gallery = rng.permutation(40)
    probes = rng.integers(0, 40, size=300)
    sim = rng.normal(size=(300, 40))
    expected = []
    for i, p in enumerate(probes):
        order = gallery[np.argsort(-sim[i])]
        expected.append(int(np.flatnonzero(order == p)[0]) + 1)
    ranks = ev.probe_ranks(sim, gallery, probes)
    assert ranks.tolist() == expected
    for k, acc in ev.rank_k(sim, gallery, probes, ks=(1, 5, 10)).items():
        assert acc == pytest.approx(np.mean(np.array(expected) <= k))


def test_rank_errors():
    with pytest.raises(ValueError, match="no template in the gallery"):
        ev.probe_ranks([[0.1, 0.2]], [1, 2], [3])
    with pytest.raises(ValueError, match="expected \\(n_probes, n_gallery\\)"):
        ev.probe_ranks([[0.1, 0.2]], [1, 2, 3], [1])


# ---------------------------------------------------------------------------------------------
# The one-call evaluation
# ---------------------------------------------------------------------------------------------


def toy_set(n_ids: int = 6, per_mod: int = 3, seed: int = 0, noise: float = 0.05, shift: float = 0.0):
    """Identities as random unit directions; NIR/thermal optionally shifted along their own axis."""
    rng = np.random.default_rng(seed)
    mods = ("vis", "nir", "thermal")
    identities = np.repeat(np.arange(n_ids), 3 * per_mod)
    modalities = np.tile(np.repeat(mods, per_mod), n_ids)
    centres = rng.normal(size=(n_ids, 32))
    offsets = {m: shift * rng.normal(size=32) * (m != "vis") for m in mods}
    emb = centres[identities] + noise * rng.normal(size=(identities.size, 32))
    emb += np.array([offsets[m] for m in modalities])
    return emb.astype(np.float32), identities, modalities


def test_evaluate_protocols_keys_counts_and_json():
    emb, ids, mods = toy_set()
    results = ev.evaluate_protocols(emb, ids, mods)
    assert list(results) == list(ev.DEFAULT_PROTOCOLS)
    for name, r in results.items():
        for key in ("rank1", "rank5", "auc", "eer", "tar_at_far_1e-1", "tar_at_far_1e-2", "tar_at_far_1e-3", "n_probes", "n_gallery"):
            assert key in r, (name, key)
        assert r["n_gallery"] == 6
        assert r["rank1"] == 1.0 and r["auc"] == 1.0 and r["eer"] == 0.0  # well separated identities
    assert results["vis->vis"]["n_probes"] == 6 * 2  # 3 VIS images, one is the template
    assert results["nir->vis"]["n_probes"] == 6 * 3
    json.dumps(results, allow_nan=False)  # plain numbers, ready for metrics.json


def test_evaluate_protocols_scores_are_cosines_of_every_probe_and_template():
    emb, ids, mods = toy_set(noise=1.0, seed=3)
    ps = ev.score_protocols(emb, ids, mods, ["thermal->vis"])["thermal->vis"]
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    expected = unit[ps.probe_idx] @ unit[ps.gallery_idx].T
    assert ps.similarity == pytest.approx(expected, abs=1e-5)
    same = ids[ps.probe_idx][:, None] == ids[ps.gallery_idx][None, :]
    assert ps.same.tolist() == same.ravel().tolist()
    metrics = ev.evaluate_protocols(emb, ids, mods, ["thermal->vis"])["thermal->vis"]
    assert metrics["auc"] == pytest.approx(roc_auc_score(same.ravel(), expected.ravel()), abs=1e-6)


def test_modality_gap_lowers_cross_modal_metrics():
    emb, ids, mods = toy_set(n_ids=20, noise=0.6, shift=1.5, seed=1)
    results = ev.evaluate_protocols(emb, ids, mods)
    assert results["nir->vis"]["rank1"] < results["vis->vis"]["rank1"]
    assert results["thermal->vis"]["d_prime"] < results["vis->vis"]["d_prime"]


def test_evaluate_protocols_input_errors():
    emb, ids, mods = toy_set()
    with pytest.raises(ValueError, match="embeddings but"):
        ev.evaluate_protocols(emb[:-1], ids, mods)
    with pytest.raises(ValueError, match="Unknown probe modality 'swir'"):
        ev.evaluate_protocols(emb, ids, mods, ["swir->vis"])
    with pytest.raises(ValueError, match="2-D"):
        ev.evaluate_protocols(emb[0], ids, mods)


def test_metrics_table_from_runs_and_metrics_json():
    emb, ids, mods = toy_set()
    protocols = ev.evaluate_protocols(emb, ids, mods)
    table = ev.metrics_table({"a": protocols, "b": protocols})
    assert len(table) == 6 and {"run", "protocol", "rank1", "auc"} <= set(table.columns)
    doc = {"baseline": {"protocols": protocols},
           "runs": {"paper": {"trainable_params": 10, "total_params": 100, "protocols": protocols}}}
    table = ev.metrics_table(doc)
    assert table["run"].tolist() == ["baseline"] * 3 + ["paper"] * 3
    assert table.loc[table.run == "paper", "trainable_params"].tolist() == [10] * 3


# ---------------------------------------------------------------------------------------------
# Modality-gap measures on embeddings with known answers
# ---------------------------------------------------------------------------------------------


def test_genuine_similarity_known_answer():
    # identity i: VIS images e_i and e_i + e_(i+2) (cosine 1/sqrt 2 between them, an image is not
    # its own pair); NIR image e_i + e_9, whose cosines with the two VIS images are 1/sqrt 2 and 1/2
    eye = np.eye(10, dtype=np.float32)
    ids = np.array([0, 0, 1, 1, 0, 1])
    mods = np.array(["vis", "vis", "vis", "vis", "nir", "nir"])
    emb = np.stack([eye[0], eye[0] + eye[2], eye[1], eye[1] + eye[3], eye[0] + eye[9], eye[1] + eye[9]])
    out = ev.genuine_similarity(emb, ids, mods)
    assert out == pytest.approx({"vis-vis": 1 / math.sqrt(2), "vis-nir": (1 / math.sqrt(2) + 0.5) / 2})


def test_centroid_distance_known_answer():
    eye = np.eye(8, dtype=np.float32)
    emb = np.stack([eye[0], eye[0], eye[1], eye[1], eye[0]])
    mods = np.array(["vis", "vis", "nir", "nir", "thermal"])
    out = ev.centroid_distances(emb, mods)
    assert out == pytest.approx({"vis-nir": math.sqrt(2), "vis-thermal": 0.0}, abs=1e-6)


def test_modality_probe_accuracy_separable_vs_indistinguishable():
    rng = np.random.default_rng(0)
    mods = np.repeat(["vis", "nir"], 100)
    emb = rng.normal(size=(200, 16))
    assert ev.modality_probe_accuracy(emb, mods) < 0.7  # same distribution: near chance (0.5)
    shifted = emb + 4.0 * (mods == "nir")[:, None] * np.eye(16)[0]
    assert ev.modality_probe_accuracy(shifted, mods) > 0.95
    assert ev.modality_probe_accuracy(shifted, mods, seed=1) == ev.modality_probe_accuracy(shifted, mods, seed=1)
    with pytest.raises(ValueError, match="fewer than"):
        ev.modality_probe_accuracy(emb[:6], np.array(["vis"] * 3 + ["nir"] * 3))


def test_gap_measures_bundle():
    emb, ids, mods = toy_set(n_ids=10, noise=0.5, shift=2.0, seed=2)
    out = ev.gap_measures(emb, ids, mods)
    assert set(out) == {"genuine_similarity", "centroid_distance", "modality_probe_accuracy", "modality_chance", "d_prime"}
    assert out["modality_chance"] == pytest.approx(1 / 3)
    assert out["genuine_similarity"]["vis-vis"] > out["genuine_similarity"]["vis-nir"]
    assert set(out["d_prime"]) == {"vis->vis", "nir->vis", "thermal->vis"}
    ps = ev.score_protocols(emb, ids, mods, ["nir->vis"])["nir->vis"]
    assert out["d_prime"]["nir->vis"] == pytest.approx(ev.decidability(ps.genuine, ps.impostor))


# ---------------------------------------------------------------------------------------------
# Embedding with a model
# ---------------------------------------------------------------------------------------------


class TinyFaceSet:
    """Duck-typed stand-in for data.FaceSet."""

    def __init__(self, n: int = 37, size: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        self.identities = np.arange(n) % 5
        self.modalities = np.array(["vis", "nir", "thermal"])[np.arange(n) % 3]
        self.splits = np.array(["eval"] * n)

    def select(self, split=None, modality=None):
        return self


def tiny_model(size: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * size * size, 16),
                               torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(16))


def to_float(images: np.ndarray) -> torch.Tensor:
    return (torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5


def test_embed_faceset_is_normalised_batched_and_restores_mode():
    faces, model = TinyFaceSet(), tiny_model()
    model.train()
    emb = ev.embed(model, faces, batch_size=10, transform=to_float)
    assert emb.shape == (37, 16) and emb.dtype == np.float32
    assert np.linalg.norm(emb, axis=1) == pytest.approx(np.ones(37), abs=1e-5)
    assert model.training  # mode given back
    model.eval()
    with torch.no_grad():
        expected = model(to_float(faces.images)).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert emb == pytest.approx(expected, abs=1e-5)  # eval mode: no dropout, running BN stats
    assert not model.training  # and an eval model stays in eval


def test_embed_loader_tensor_and_default_transform_agree():
    faces, model = TinyFaceSet(), tiny_model()
    from hfr_tutorial.models.edgeface import images_to_tensor

    reference = ev.embed(model, faces, batch_size=8, transform=images_to_tensor)
    default = ev.embed(model, faces, batch_size=8)  # lazily imports images_to_tensor
    assert default == pytest.approx(reference, abs=1e-6)
    x = to_float(faces.images)
    loader = [(x[i : i + 5], torch.zeros(len(x[i : i + 5]))) for i in range(0, len(x), 5)]
    assert ev.embed(model, loader, progress=True) == pytest.approx(reference, abs=1e-5)
    assert ev.embed(model, x, batch_size=64) == pytest.approx(reference, abs=1e-5)


def test_embed_flip_tta_sums_both_views():
    faces, model = TinyFaceSet(), tiny_model()
    model.eval()
    x = to_float(faces.images)
    with torch.no_grad():
        both = (model(x) + model(torch.flip(x, dims=[3]))).numpy()
    both /= np.linalg.norm(both, axis=1, keepdims=True)
    emb = ev.embed(model, faces, flip_tta=True, transform=to_float)
    assert emb == pytest.approx(both, abs=1e-5)
    assert not np.allclose(emb, ev.embed(model, faces, transform=to_float), atol=1e-3)


def test_embed_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="empty"):
        ev.embed(model, [])
    with pytest.raises(ValueError, match="expected model input"):
        ev.embed(model, [torch.zeros(2, 8, 8)])

    class Broken(torch.nn.Module):
        def forward(self, x):
            return torch.full((len(x), 4), float("nan"))

    with pytest.raises(ValueError, match="NaN"):
        ev.embed(Broken(), TinyFaceSet(n=3), transform=to_float)
