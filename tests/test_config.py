"""Preset rules that are rules, not measurements."""
from __future__ import annotations

import pytest

from hfr_tutorial.config import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_oracle_gets_the_baselines_optimisation_steps(name):
    """oracle_epochs: the whole number of epochs over all modalities whose steps come closest to the
    baseline's (both recognisers train from scratch, so they get the same compute)."""
    preset = PRESETS[name]
    n_mod = len(preset.data.modalities)
    train = preset.train
    best = min(range(1, 4 * train.baseline_epochs), key=lambda e: (abs(e * n_mod - train.baseline_epochs), e))
    assert train.oracle_epochs == best, (name, train.oracle_epochs, best)


def test_results_file_finds_committed_records_from_the_package_and_names_a_missing_one():
    from hfr_tutorial.config import results_file

    path = results_file("seeds", "seeds.json")
    assert path.is_file() and path.parts[-4:] == ("docs", "results", "seeds", "seeds.json")
    with pytest.raises(FileNotFoundError, match="no_such.json not found.*benchmarks/"):
        results_file("no_such.json")


def test_repository_root_is_the_clone_holding_data_scripts_and_names_a_non_editable_install(monkeypatch, tmp_path):
    import hfr_tutorial.config as config

    root = config.repository_root()
    assert (root / "data_scripts" / "prepare_folder.py").is_file() and (root / "hfr_tutorial" / "config.py").is_file()
    fake = tmp_path / "site-packages" / "hfr_tutorial" / "config.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(config, "__file__", str(fake))
    with pytest.raises(FileNotFoundError, match="outside a clone.*pip install -e"):
        config.repository_root()
