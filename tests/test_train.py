"""The two training loops: they learn, resume exactly, keep frozen weights, and stop on NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hfr_tutorial import train as train_module
from hfr_tutorial.config import get_preset
from hfr_tutorial.data import synthetic_faceset
from hfr_tutorial.tuning import policy_parameter_names
from hfr_tutorial.train import AdaptSettings, TrainingDiverged, adapt_cross_spectral, train_recognizer, warmup_cosine

TINY = get_preset("fast").replace(
    name="tiny", data__image_size=32, data__n_train_ids=32, data__n_dev_ids=8, data__n_eval_ids=8,
    data__images_per_modality=3, train__batch_size=16, train__baseline_epochs=2, train__adapt_epochs=2,
    train__adapt_pairs_per_identity=2)


@pytest.fixture(scope="module")
def tiny_faceset():
    return synthetic_faceset(TINY, seed=0, progress=False)


@pytest.fixture(scope="module")
def tiny_baseline(tiny_faceset):
    return train_recognizer(tiny_faceset.select(split="train"), TINY.train, progress=False)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_warmup_cosine_schedule_shape():
    f = warmup_cosine(100, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5, abs=0.02) and f(100) == pytest.approx(0.0)


def test_recognizer_history_has_one_row_per_epoch(tiny_faceset, tiny_baseline):
    history = tiny_baseline.history
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "lr", "seconds", "train_acc"} <= set(history.columns)
    assert np.isfinite(history["loss"]).all()
    with torch.no_grad():
        out = tiny_baseline.model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 512)


def test_recognizer_resume_gives_the_same_weights(tiny_faceset, tmp_path):
    data = tiny_faceset.select(split="train")
    full = train_recognizer(data, TINY.train, checkpoint_dir=tmp_path / "a", progress=False)
    first = train_recognizer(data, TINY.train, checkpoint_dir=tmp_path / "b", progress=False, stop_after_epoch=1)
    assert len(first.history) == 1
    resumed = train_recognizer(data, TINY.train, checkpoint_dir=tmp_path / "b", progress=False)
    assert len(resumed.history) == 2
    assert _same_weights(full.model, resumed.model)
    assert not _same_weights(first.model, resumed.model)


def test_adaptation_trains_only_the_policy_and_leaves_teacher_alone(tiny_faceset, tiny_baseline):
    before = {k: v.clone() for k, v in tiny_baseline.model.state_dict().items()}
    result = adapt_cross_spectral(tiny_baseline.model, tiny_faceset.select(split="train"), TINY.train,
                                  AdaptSettings(policy="paper"), dev_set=tiny_faceset.select(split="dev"),
                                  progress=False)
    after_teacher = tiny_baseline.model.state_dict()
    assert all(torch.equal(before[k], after_teacher[k]) for k in before)  # the teacher is untouched
    student = result.model.state_dict()
    changed = {k for k in student if not torch.equal(student[k], before[k])}
    assert changed, "the student did not learn"
    assert changed <= policy_parameter_names(result.model, "paper"), changed - policy_parameter_names(result.model, "paper")
    assert result.policy.trainable == 14_488
    assert {"infonce", "distill", "val_nir_rank1", "val_thermal_rank1", "val_vis_rank1"} <= set(result.history.columns)


def test_adaptation_resume_gives_the_same_weights(tiny_faceset, tiny_baseline, tmp_path):
    data = tiny_faceset.select(split="train")
    settings = AdaptSettings(policy="paper", contrastive="pairwise+infonce")
    full = adapt_cross_spectral(tiny_baseline.model, data, TINY.train, settings, checkpoint_dir=tmp_path / "a",
                                progress=False)
    adapt_cross_spectral(tiny_baseline.model, data, TINY.train, settings, checkpoint_dir=tmp_path / "b",
                         progress=False, stop_after_epoch=1)
    resumed = adapt_cross_spectral(tiny_baseline.model, data, TINY.train, settings, checkpoint_dir=tmp_path / "b",
                                   progress=False)
    assert _same_weights(full.model, resumed.model)
    assert {"pairwise", "infonce"} <= set(full.history.columns)


def test_checkpoint_of_another_configuration_is_not_resumed(tiny_faceset, tmp_path):
    data = tiny_faceset.select(split="train")
    train_recognizer(data, TINY.train, checkpoint_dir=tmp_path, progress=False, stop_after_epoch=1)
    other = TINY.train.__class__(**{**TINY.train.__dict__, "baseline_lr": 1e-3})
    result = train_recognizer(data, other, checkpoint_dir=tmp_path, progress=False)
    assert list(result.history["epoch"]) == [1, 2]  # started over


def test_nan_loss_stops_with_the_step_and_cause(tiny_faceset, monkeypatch):
    monkeypatch.setattr(train_module.step, "normalize", lambda x: x * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"epoch 0, step 0.*learning rate"):
        train_recognizer(tiny_faceset.select(split="train"), TINY.train, progress=False)


def test_frozen_policy_and_unknown_loss_are_refused(tiny_faceset, tiny_baseline):
    data = tiny_faceset.select(split="train")
    with pytest.raises(ValueError, match="nothing to train"):
        adapt_cross_spectral(tiny_baseline.model, data, TINY.train, AdaptSettings(policy="frozen"), progress=False)
    with pytest.raises(ValueError, match="Unknown contrastive loss"):
        adapt_cross_spectral(tiny_baseline.model, data, TINY.train, AdaptSettings(contrastive="triplet"),
                             progress=False)


def test_settings_name_the_comparison_runs():
    assert AdaptSettings().name == "paper/infonce+distill"
    assert AdaptSettings(policy="layernorm", distill_weight=0).name == "layernorm/infonce"
    assert AdaptSettings(policy="full", contrastive="pairwise").name == "full/pairwise+distill"


def test_every_registered_run_is_named_for_its_policy_and_losses():
    from hfr_tutorial.runs import FULL_RUN, METHOD_RUN, RUNS, ablations

    for name, spec in RUNS.items():
        if spec.adapts:
            assert spec.settings.resolved(TINY.train).name == name
    assert RUNS[METHOD_RUN].role == "method" and RUNS[FULL_RUN].role == "full" and METHOD_RUN.startswith("paper/")
    for ablation, run in ablations().items():  # an ablation differs from its run in distillation only
        a, r = RUNS[ablation], RUNS[run]
        assert a.settings.distill_weight == 0 and (a.settings.policy, a.settings.contrastive, a.rates) == (
            r.settings.policy, r.settings.contrastive, r.rates)


def test_settings_take_the_recipe_from_the_preset():
    """Unset fields come from TrainConfig, so the recipe (lambda, loss, lr, epochs) lives in one place."""
    cfg = TINY.train
    r = AdaptSettings().resolved(cfg)
    assert (r.contrastive, r.distill_weight, r.epochs, r.lr) == (cfg.contrastive, cfg.distill_weight,
                                                                 cfg.adapt_epochs, cfg.adapt_lr)
    r = AdaptSettings(distill_weight=0.0, lr=5e-3, epochs=1, contrastive="pairwise").resolved(cfg)
    assert (r.contrastive, r.distill_weight, r.epochs, r.lr) == ("pairwise", 0.0, 1, 5e-3)
    other = cfg.distill_weight + 1
    assert AdaptSettings(distill_weight=other).label.endswith(f"(distill_weight={other})")


def test_validation_subset_keeps_the_first_images_of_each_identity_and_modality(tiny_faceset):
    dev = tiny_faceset.select(split="dev")
    sub = train_module.validation_subset(dev, ["vis", "nir"], per_identity=2)
    assert set(np.unique(sub.modalities)) == {"vis", "nir"}
    for ident in np.unique(dev.identities):
        for m in ("vis", "nir"):
            want = np.asarray(dev.images)[(dev.identities == ident) & (dev.modalities == m)][:2]
            got = np.asarray(sub.images)[(sub.identities == ident) & (sub.modalities == m)]
            assert np.array_equal(got, want)


def test_teacher_targets_are_the_teachers_embeddings_of_each_batch(tiny_faceset, tiny_baseline):
    """The table the adaptation looks its distillation targets up in equals a teacher pass per batch."""
    from hfr_tutorial.models.edgeface import normalize

    data = tiny_faceset.select(split="train")
    teacher = tiny_baseline.model.eval()
    table = train_module.adapt.teacher_embeddings(teacher, data, batch_size=7)
    assert table.shape == (len(data), 512)
    assert torch.count_nonzero(table[torch.from_numpy(data.modalities != "vis")]) == 0
    batch = next(iter(data.pair_loader(8, seed=1, pairs_per_identity=2)))
    assert (data.modalities[batch["vis_index"].numpy()] == "vis").all()
    assert torch.allclose(batch["vis"], torch.from_numpy(data.images[batch["vis_index"].numpy()]).permute(0, 3, 1, 2) / 255.0)
    with torch.no_grad():
        direct = teacher(normalize(batch["vis"]))
    assert torch.allclose(table[batch["vis_index"]], direct, atol=1e-4)


def test_adaptation_with_and_without_vis_augmentation(tiny_faceset, tiny_baseline, monkeypatch):
    """Both settings train; only the un-augmented one can use the precomputed teacher targets."""
    data = tiny_faceset.select(split="train")
    calls = []
    original = train_module.adapt.teacher_embeddings
    monkeypatch.setattr(train_module.adapt, "teacher_embeddings", lambda *a, **k: calls.append(1) or original(*a, **k))
    for augment in (False, True):
        config = TINY.replace(train__adapt_augment_vis=augment, train__adapt_epochs=1).train
        result = adapt_cross_spectral(tiny_baseline.model, data, config, progress=False)
        assert np.isfinite(result.history["loss"]).all()
    assert calls == [1]


def test_adamw_fuses_only_where_torch_has_the_kernel():
    cpu = train_module.adamw([torch.nn.Parameter(torch.zeros(3))], lr=1e-3, weight_decay=0.0)
    meta = train_module.adamw([torch.nn.Parameter(torch.zeros(3, device="meta"))], lr=1e-3, weight_decay=0.0)
    assert cpu.defaults["fused"] is True and not meta.defaults["fused"]


def test_recognizer_augment_switch(tiny_faceset):
    """``augment=False`` (the oracle's setting) trains on the images as they are: other weights, still finite."""
    data = tiny_faceset.select(split="train")
    plain = train_recognizer(data, TINY.train, epochs=1, augment=False, progress=False)
    augmented = train_recognizer(data, TINY.train, epochs=1, augment=True, progress=False)
    assert np.isfinite(plain.history["loss"]).all()
    assert not _same_weights(plain.model, augmented.model)
