"""The cache key of the embedded data is the generator's settings and GENERATOR_VERSION (not its file's bytes):
a change of the generator's output must come with a new version, or every cached model would be wrong."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hfr_tutorial.artifacts import data_payload
from hfr_tutorial.config import get_preset
from hfr_tutorial.data import SyntheticConfig
from hfr_tutorial.data.synthetic import GENERATOR_VERSION, generate

REFERENCE = Path(__file__).parent / "data" / "generator_reference.npz"
"""A few faces of every modality rendered by the generator at the version it records (regenerate with
``python tests/test_generator_version.py`` after bumping GENERATOR_VERSION)."""


def render() -> np.ndarray:
    images, *_ = generate(range(3), ("vis", "nir", "thermal"), 2, 32, seed=11, config=SyntheticConfig(),
                          progress=False, workers=1)
    return np.asarray(images)


def test_the_generator_output_changes_only_with_its_version():
    ref = np.load(REFERENCE)
    images = render()
    if int(ref["version"]) == GENERATOR_VERSION:
        # float rounding of another CPU may move a pixel by a level or two; a change of the renderer moves many
        diff = np.abs(images.astype(int) - ref["images"].astype(int))
        assert images.shape == ref["images"].shape and diff.max() <= 2 and diff.mean() < 0.01, (
            f"The generator's output changed (max pixel change {diff.max()}, mean {diff.mean():.3f}) but "
            f"GENERATOR_VERSION is still {GENERATOR_VERSION}: bump it in hfr_tutorial/data/synthetic.py (cached data "
            "and models are keyed by it) and regenerate tests/data/generator_reference.npz.")


def test_the_data_key_holds_the_version_and_the_settings_not_the_source_bytes():
    payload = data_payload(get_preset("smoke"), 0)
    assert payload["generator_version"] == GENERATOR_VERSION
    assert payload["generator"] == json.loads(json.dumps(SyntheticConfig().__dict__))
    assert not any("sha" in k or "source" in k for k in payload)


if __name__ == "__main__":
    np.savez_compressed(REFERENCE, images=render(), version=GENERATOR_VERSION)
    print(f"wrote {REFERENCE} at GENERATOR_VERSION {GENERATOR_VERSION}")
