"""hfr_tutorial.projection.map_sample: the same people in every map of the course (notebooks 00, 01, 03, 04, 06)."""
from __future__ import annotations

import numpy as np
import pytest

from hfr_tutorial.projection import MAP_IDENTITIES, map_sample


def test_the_same_people_whatever_the_notebook_drew_before():
    ids = np.repeat(np.arange(200), 6)
    first = map_sample(ids)
    np.random.default_rng(123).random(1000)  # a notebook's own generator or numpy's global state moving on
    np.random.seed(5)
    again = map_sample(ids)
    assert np.array_equal(first, again)
    assert len(np.unique(ids[first])) == MAP_IDENTITIES
    assert all(first[ids == i].all() or not first[ids == i].any() for i in range(200))  # whole people, every image


def test_another_order_of_images_keeps_the_same_people():
    ids = np.repeat(np.arange(50), 3)
    shuffled = np.random.default_rng(0).permutation(ids)
    assert set(ids[map_sample(ids)]) == set(shuffled[map_sample(shuffled)])


def test_fewer_people_than_asked_keeps_all_of_them():
    ids = np.array(["a", "b", "a", "c"])
    assert map_sample(ids, n_identities=30).all()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_count_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="n_identities"):
        map_sample(np.arange(10), n_identities=bad)


def test_empty_identities_are_refused_by_name():
    with pytest.raises(ValueError, match="map_sample: identities"):
        map_sample(np.array([]))


def test_a_umap_map_leaves_torch_threads_as_they_were():
    """numba's OpenMP start-up raised torch's thread count to every core, and training after a map then
    oversubscribed shared cores (an epoch 12 times slower in CI); a subprocess, so OpenMP starts fresh."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np, torch\n"
            "from hfr_tutorial.projection import reduce_2d\n"
            "before = torch.get_num_threads()\n"
            "reduce_2d(np.random.default_rng(0).normal(size=(60, 8)).astype('float32'), n_epochs=20)\n"
            "print(before, torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    assert out.stdout.split() == ["1", "1"], out.stdout + out.stderr
