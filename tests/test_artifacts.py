"""The artifact cache: load if present, else build; stale or corrupt entries are rebuilt, never used."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hfr_tutorial import artifacts
from hfr_tutorial.artifacts import load_adapted, load_baseline, load_faceset, load_oracle
from hfr_tutorial.config import get_preset
from hfr_tutorial.train import AdaptSettings

TINY = get_preset("smoke").replace(
    name="tiny", data__n_train_ids=32, data__n_dev_ids=8, data__n_eval_ids=8, train__batch_size=16,
    train__baseline_epochs=1, train__adapt_epochs=1, train__adapt_pairs_per_identity=1)


def _weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_faceset_is_cached_and_memory_mapped():
    first = load_faceset(TINY, progress=False)
    second = load_faceset(TINY, progress=False)
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(second.images))
    np.testing.assert_array_equal(first.identities, second.identities)
    assert list(first.modalities) == list(second.modalities) and list(first.splits) == list(second.splits)


def test_corrupt_faceset_entry_is_rebuilt():
    load_faceset(TINY, progress=False)
    (entry,) = (artifacts.entry_dir("tiny", "x", "y").parent).glob("data-*")
    (entry / "identities.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_faceset(TINY, progress=False)
    assert len(again) == len(again.identities) > 0


def test_models_are_built_once_then_loaded():
    built = load_baseline(TINY, progress=False)
    assert not built.from_cache and built.path.is_dir() and (built.path / "model.pt").is_file()
    loaded = load_baseline(TINY, progress=False)
    assert loaded.from_cache and loaded.key == built.key
    assert _weights_equal(built.model, loaded.model)
    assert list(loaded.history["epoch"]) == list(built.history["epoch"])
    adapted = load_adapted(AdaptSettings(policy="layernorm"), TINY, progress=False)
    assert adapted.trainable_params == 3_328 and adapted.total_params == 1_244_744
    again = load_adapted(AdaptSettings(policy="layernorm"), TINY, progress=False)
    assert again.from_cache and _weights_equal(adapted.model, again.model)


def test_oracle_trains_its_own_epochs_over_every_modality():
    one = load_oracle(TINY, progress=False)
    two = load_oracle(TINY.replace(train__oracle_epochs=2), progress=False)
    assert list(one.history["epoch"]) == [1] and list(two.history["epoch"]) == [1, 2]
    assert two.key != one.key and not two.from_cache


@pytest.mark.parametrize("field, value", [("oracle_epochs", 0), ("baseline_epochs", 2.5), ("batch_size", True),
                                          ("adapt_lr", 0.0)])
def test_train_config_refuses_counts_and_rates_that_cannot_train(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}="):
        TINY.replace(**{f"train__{field}": value})


def test_another_configuration_gets_another_entry():
    a = load_baseline(TINY, progress=False)
    b = load_baseline(TINY.replace(train__baseline_lr=1e-3), progress=False)
    assert a.key != b.key and not b.from_cache


@pytest.mark.parametrize("damage", ["truncate_weights", "wrong_record", "bad_json"])
def test_corrupt_or_stale_model_entry_is_rebuilt(damage):
    built = load_baseline(TINY, progress=False)
    if damage == "truncate_weights":
        path = built.path / "model.pt"
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "wrong_record":
        meta = json.loads((built.path / "meta.json").read_text())
        meta["payload"]["epochs"] = 999  # as if written by another configuration
        (built.path / "meta.json").write_text(json.dumps(meta))
    else:
        (built.path / "meta.json").write_text("{not json")
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_baseline(TINY, progress=False)
    assert not rebuilt.from_cache
    assert _weights_equal(built.model, rebuilt.model)  # same seed, same weights
    assert load_baseline(TINY, progress=False).from_cache


def test_cached_faceset_keeps_names_and_metadata():
    fresh = load_faceset(TINY, progress=False)
    cached = load_faceset(TINY, progress=False)
    assert list(cached.identity_names) == list(fresh.identity_names)
    assert cached.name == fresh.name
    assert (cached.landmarks is None) == (fresh.landmarks is None)


def test_cache_key_does_not_depend_on_num_workers():
    """Worker processes change the speed of training, not its result (the loaders' batches are seeded)."""
    from hfr_tutorial.artifacts import recognizer_payload
    from hfr_tutorial.cache import payload_key
    from hfr_tutorial.config import get_preset

    smoke = get_preset("smoke")
    keys = {payload_key(recognizer_payload(smoke.replace(train__num_workers=n), 0, ("vis",), 1)) for n in (0, 2)}
    assert len(keys) == 1
    assert payload_key(recognizer_payload(smoke.replace(train__baseline_lr=1e-2), 0, ("vis",), 1)) not in keys


def test_adaptation_key_ignores_the_recogniser_fields_and_an_overridden_default_rate():
    """Changing the oracle's budget, the baseline's head or the default adapt_lr must not retrain the
    comparison runs (which carry their own rates); what an adaptation reads must change its key."""
    from hfr_tutorial.artifacts import adapt_payload
    from hfr_tutorial.cache import payload_key
    from hfr_tutorial.config import get_preset
    from hfr_tutorial.runs import METHOD_RUN, STAND_IN, get_run

    preset = get_preset("fast")
    spec = get_run(METHOD_RUN)
    settings = spec.settings_at(spec.rates[STAND_IN])

    def key(p):
        return payload_key(adapt_payload("baseline-key", "data-key", p.train, settings, 0))

    same = [preset.replace(train__oracle_epochs=3), preset.replace(train__oracle_augment=True),
            preset.replace(train__adapt_lr=1e-3), preset.replace(train__head_margin=0.2)]
    assert {key(p) for p in same} == {key(preset)}
    changed = [preset.replace(train__adapt_pairs_per_identity=2), preset.replace(train__temperature=0.1),
               preset.replace(train__adapt_augment_vis=True)]
    assert len({key(p) for p in changed} | {key(preset)}) == 4
    # a run that names no rate takes the default, so there the default is part of the key
    no_rate = type(settings)(policy="paper")
    assert (payload_key(adapt_payload("b", "d", preset.train, no_rate, 0))
            != payload_key(adapt_payload("b", "d", preset.replace(train__adapt_lr=1e-3).train, no_rate, 0)))
