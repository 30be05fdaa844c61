"""EdgeFace registry: parameter counts, the input convention, and loading real checkpoints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from hfr_tutorial.models import (
    CheckpointError,
    create_edgeface,
    count_parameters,
    images_to_tensor,
    list_variants,
    load_edgeface,
    read_checkpoint,
)
from hfr_tutorial.models.edgeface import LoRaLin, low_rank

# Published sizes (EdgeFace paper / official repository), in thousands of parameters.
PUBLISHED_K = {"edgeface_xxs": 1245, "edgeface_xs": 2243, "edgeface_xs_gamma_06": 1770,
               "edgeface_s_gamma_05": 3653, "edgeface_base": 18226}


@pytest.mark.parametrize("variant", list_variants())
def test_parameter_count_matches_publication(variant):
    model = create_edgeface(variant)
    assert round(count_parameters(model) / 1000) == PUBLISHED_K[variant]


@pytest.mark.parametrize("variant", ["edgeface_xxs", "edgeface_xs_gamma_06"])
def test_forward_gives_512d_at_112_and_64(variant):
    model = create_edgeface(variant).eval()
    for size in (112, 64):
        with torch.no_grad():
            out = model(torch.zeros(2, 3, size, size))
        assert out.shape == (2, 512)


def test_low_rank_rule_replaces_head_fc():
    model = create_edgeface("edgeface_xs_gamma_06")
    assert isinstance(model.model.head.fc, LoRaLin)
    assert model.model.head.fc.rank == low_rank(model.model.head.fc.in_features, 512, 0.6)
    assert low_rank(3, 100, 0.5) == 2  # the floor of 2


def test_random_init_is_seeded():
    a = create_edgeface("edgeface_xxs", seed=3).state_dict()
    b = create_edgeface("edgeface_xxs", seed=3).state_dict()
    c = create_edgeface("edgeface_xxs", seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_images_to_tensor_convention():
    images = np.array([[[[0, 255, 128]]]], dtype=np.uint8)  # (1,1,1,3)
    x = images_to_tensor(images)
    assert x.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(x.flatten().numpy(), [-1.0, 1.0, 128 / 255 * 2 - 1], atol=1e-6)
    grey = images_to_tensor(np.zeros((2, 4, 4), dtype=np.uint8))
    assert grey.shape == (2, 3, 4, 4)
    with pytest.raises(TypeError, match="uint8"):
        images_to_tensor(np.zeros((1, 4, 4, 3), dtype=np.float32))


def test_unknown_variant_suggests_a_name():
    with pytest.raises(KeyError, match="edgeface_xxs"):
        create_edgeface("edgeface_xxx")


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="otroshi/edgeface"):
        load_edgeface("edgeface_xxs", tmp_path / "nope.pt")


def test_wrong_variant_checkpoint_names_keys_and_likely_variant(tmp_path):
    path = tmp_path / "xs.pt"
    torch.save(create_edgeface("edgeface_xs").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_edgeface("edgeface_xxs", path)
    message = str(info.value)
    assert str(path) in message and "wrong shapes" in message and "'edgeface_xs'" in message
    assert count_parameters(load_edgeface("edgeface_xs", path)) == 2_242_620  # the right variant loads


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(create_edgeface("edgeface_xxs").state_dict(), path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_edgeface("edgeface_xxs", truncated)


def test_roundtrip_of_own_state_dict_without_prefix(tmp_path):
    model = create_edgeface("edgeface_xxs", seed=1)
    path = tmp_path / "bare.pt"
    torch.save(model.model.state_dict(), path)  # a bare timm state dict
    loaded = load_edgeface("edgeface_xxs", path, seed=2)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------------------------
# Real weights on real faces (need HFR_ASSETS; run in CI)
# ----------------------------------------------------------------------------------------------
def _load_faces(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in sorted(folder.glob("vis/*/*")):
        image = Image.open(path).convert("RGB").resize((112, 112), Image.BILINEAR)
        images.append(np.asarray(image))
        labels.append(path.parent.name)
    return np.stack(images), np.asarray(labels)


def _auc_and_rank1(model, images, labels) -> tuple[float, float]:
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model.eval()(images_to_tensor(images)), dim=1).numpy()
    sim = emb @ emb.T
    iu = np.triu_indices(len(labels), k=1)
    auc = roc_auc_score((labels[:, None] == labels[None, :])[iu], sim[iu])
    np.fill_diagonal(sim, -np.inf)
    rank1 = float(np.mean(labels[sim.argmax(1)] == labels))
    return float(auc), rank1


# Reference figures of ../shared/assets/README.md (float files); _q files agree to within noise.
REFERENCE = {("edgeface_xxs", "dlib_johns"): (0.900, 0.982), ("edgeface_xxs", "bbt8_faceapi"): (0.694, 0.550),
             ("edgeface_xs", "dlib_johns"): (0.886, 0.927), ("edgeface_xs", "bbt8_faceapi"): (0.707, 0.575)}


@pytest.mark.assets
@pytest.mark.parametrize("kind", ["float", "q"])
@pytest.mark.parametrize("variant", ["edgeface_xxs", "edgeface_xs"])
def test_real_checkpoint_recognises_real_faces(assets, variant, kind):
    model = load_edgeface(variant, assets / "weights" / f"{variant}_{kind}.pt")
    for face_set in ("dlib_johns", "bbt8_faceapi"):
        images, labels = _load_faces(assets / "faces" / face_set)
        auc, rank1 = _auc_and_rank1(model, images, labels)
        ref_auc, ref_rank1 = REFERENCE[(variant, face_set)]
        assert abs(auc - ref_auc) < 0.02, (face_set, auc)
        assert abs(rank1 - ref_rank1) < 0.06, (face_set, rank1)
        random_auc, _ = _auc_and_rank1(create_edgeface(variant, seed=0), images, labels)
        assert auc > random_auc + 0.1


@pytest.mark.assets
def test_quantized_file_dequantizes_to_the_float_file(assets):
    q = read_checkpoint(assets / "weights" / "edgeface_xxs_q.pt")
    f = read_checkpoint(assets / "weights" / "edgeface_xxs_float.pt")
    assert set(q) == set(f)
    assert all(torch.equal(q[k], f[k]) for k in f)


@pytest.mark.assets
def test_real_checkpoint_into_wrong_variant_names_the_right_one(assets):
    with pytest.raises(CheckpointError, match="'edgeface_xxs'"):
        load_edgeface("edgeface_xs", assets / "weights" / "edgeface_xxs_float.pt")
