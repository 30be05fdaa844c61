"""Edge deployment: the ONNX round trip, int8, the refusal of damaged files, the export command.

Two exports of EdgeFace in all (each takes 10-20 s of tracing on a laptop CPU): a random-init
EdgeFace-XXS at 64 px through the ``export`` command (module fixture, reused by the file tests), and
the real weights at 112 px where the assets are present; the atomic-write tests export a tiny
module instead (a few seconds).
"""
from __future__ import annotations

import errno
import shutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from hfr_tutorial import deploy  # noqa: E402
from hfr_tutorial.__main__ import build_parser, main  # noqa: E402
from hfr_tutorial.deploy import DeploymentError  # noqa: E402
from hfr_tutorial.evaluate import evaluate_protocols, verification_metrics  # noqa: E402
from hfr_tutorial.models import create_edgeface, find_checkpoint, load_edgeface  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One PyTorch thread: on a shared 2-core machine two threads wait on each other at every operator."""
    with deploy.torch_threads(1):
        yield


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`hfr-tutorial export` on a tmp checkpoint of a random-init XXS at 64 px, with static int8."""
    folder = tmp_path_factory.mktemp("export")
    model = create_edgeface("edgeface_xxs", seed=0).eval()
    checkpoint = folder / "random_xxs.pt"
    torch.save(model.state_dict(), checkpoint)
    from hfr_tutorial.data import FaceSet

    layouts = {}
    for name, identities in (("faces", range(6)), ("calibration", range(100, 104))):
        images, ids, mods = deploy.synthetic_faces(64, identities=identities, per_modality=2)
        FaceSet(images, ids, mods, splits=np.full(len(ids), "eval"), name=name).write_layout(folder / name)
        layouts[name] = folder / name
    args = build_parser().parse_args(["export", "--checkpoint", str(checkpoint), "--out", str(folder / "model.onnx"),
                                 "--image-size", "64", "--int8", "static", "--calibration", str(layouts["calibration"]),
                                 "--faces", str(layouts["faces"]), "--repeats", "3", "--threads", "1"])
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = args.func(args)
    return {"rc": rc, "stdout": out.getvalue(), "folder": folder, "model": model, "onnx": folder / "model.onnx",
            "int8": folder / "model.int8-static.onnx"}


def test_export_command_on_a_tmp_checkpoint(exported):
    assert exported["rc"] == 0, exported["stdout"]
    text = exported["stdout"]
    assert exported["onnx"].is_file() and exported["int8"].is_file()
    for expected in ("Size on disk", "ONNX float", "ONNX int8 (static)", "PASS", "batch 1:", "batch 64:", "faces/s",
                     "rank-1", "EER", "torch.onnx.export(dynamo=True)", "Agreement set: 36 faces of 6 identities",
                     "Calibrated static int8 on 24 faces from the layout"):
        assert expected in text, f"{expected!r} missing from the command's output:\n{text}"
    assert "FAIL" not in text


def test_round_trip_agrees_above_the_float_threshold_with_a_dynamic_batch(exported):
    model = exported["model"]
    images, ids, mods = deploy.synthetic_faces(64, identities=range(20_000, 20_012))
    reference = deploy.torch_form(model, "PyTorch float", image_size=64)
    onnx_float = deploy.onnx_form(exported["onnx"], "ONNX float")
    agreement = deploy.check_form(onnx_float, reference, images, threshold=deploy.FLOAT_THRESHOLD,
                                  identities=ids, modalities=mods)
    assert agreement.passed and agreement.cos_min >= 0.999 and agreement.cos_mean >= 0.999
    assert list(agreement.metrics.index) == ["vis->vis", "nir->vis", "thermal->vis"]
    assert np.allclose(agreement.metrics["d_rank1"], 0, atol=0.02)
    for batch in (1, 7):  # one file serves every batch size
        x = deploy.faces_to_input(images[:batch], 64)
        assert onnx_float.run(x).shape == (batch, 512)
    summary = deploy.operator_summary(exported["onnx"])
    assert summary["inputs"] == [("input", ["batch", 3, 64, 64])]
    assert summary["outputs"] == [("embedding", ["batch", 512])]
    meta = deploy.onnx_metadata(deploy.load_onnx(exported["onnx"]))
    assert meta["hfr_tutorial.image_size"] == "64" and meta["hfr_tutorial.variant"] == "edgeface_xxs"
    with pytest.raises(DeploymentError, match="64x64"):
        deploy.embed_form(onnx_float, np.zeros((2, 112, 112, 3), np.uint8))


def test_two_models_of_one_variant_export_to_the_same_graph(exported, tmp_path):
    """The adapted model costs what the original costs: only initializer values differ."""
    summary = deploy.operator_summary(exported["onnx"])
    int8 = deploy.operator_summary(exported["int8"])
    assert "QuantizeLinear" in int8["op_types"] and "QuantizeLinear" not in summary["op_types"]
    assert deploy.file_size(exported["int8"]) < 0.5 * deploy.file_size(exported["onnx"])


def test_dynamic_int8_in_torch_and_onnxruntime(exported, tmp_path):
    model = exported["model"]
    quantized = deploy.quantize_torch_dynamic(model)
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    dynamic = [m for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert n_linear == 31 and len(dynamic) == n_linear
    assert all(isinstance(m, nn.Linear) for m in model.modules() if isinstance(m, nn.Linear))  # original untouched
    assert deploy.torch_file_size(quantized) < 0.5 * deploy.torch_file_size(model)
    dst = deploy.quantize_onnx_dynamic(exported["onnx"], tmp_path / "dyn.onnx")
    assert "DynamicQuantizeLinear" in deploy.operator_summary(dst)["op_types"]
    images, ids, mods = deploy.synthetic_faces(64, identities=range(20_000, 20_012))
    reference = deploy.torch_form(model, "PyTorch float", image_size=64)
    for form in (deploy.torch_form(quantized, "PyTorch int8", image_size=64), deploy.onnx_form(dst, "ONNX int8")):
        agreement = deploy.check_form(form, reference, images, threshold=deploy.INT8_THRESHOLD, identities=ids,
                                      modalities=mods)
        assert agreement.passed, agreement.summary()


def _flip(src: Path, dst: Path, at: float) -> Path:
    data = bytearray(src.read_bytes())
    i = int(len(data) * at)
    data[i:i + 4] = bytes(b ^ 0xFF for b in data[i:i + 4])
    dst.write_bytes(bytes(data))
    return dst


def test_a_tampered_file_is_refused(exported, tmp_path):
    deploy.load_onnx(exported["onnx"])  # the original is fine
    # a flipped weight parses and runs: only the integrity checksum can tell
    with pytest.raises(DeploymentError, match="fails its integrity check"):
        deploy.load_onnx(_flip(exported["onnx"], tmp_path / "weights.onnx", 0.5))
    with pytest.raises(DeploymentError, match="fails its integrity check"):
        deploy.onnx_session(_flip(exported["int8"], tmp_path / "int8.onnx", 0.6))
    with pytest.raises(DeploymentError):  # the header: not parseable, or not a valid model
        deploy.load_onnx(_flip(exported["onnx"], tmp_path / "header.onnx", 0.0))
    foreign = tmp_path / "foreign.onnx"
    import onnx

    model = onnx.load(exported["onnx"])
    del model.metadata_props[:]
    onnx.save(model, foreign)
    with pytest.raises(DeploymentError, match=r"no integrity checksum \(hfr_tutorial.sha256\)"):
        deploy.load_onnx(foreign)
    deploy.load_onnx(foreign, require_integrity=False)


def test_the_integrity_check_is_not_a_signature(exported, tmp_path):
    """What the checksum promises, and no more: an edit that recomputes it passes (issue #27: call it what it is)."""
    import onnx
    from onnx import numpy_helper

    from hfr_tutorial.deploy.export import stamp_and_save

    model = deploy.load_onnx(exported["onnx"])
    init = model.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 1.0, init.name))  # a deliberate edit ...
    meta = {k: v for k, v in deploy.onnx_metadata(model).items() if k != deploy.INTEGRITY_KEY}
    edited = stamp_and_save(model, tmp_path / "edited.onnx", meta)  # ... with the checksum recomputed
    deploy.load_onnx(edited)  # is accepted: the checksum detects accidental change only
    source = (Path(deploy.__file__).parent / "export.py").read_text()
    assert "not a signature" in source and "tamper" not in source.lower()
    assert isinstance(onnx.load(edited), onnx.ModelProto)


@pytest.mark.parametrize("keep", [0.33, 0.999])
def test_a_truncated_file_is_refused(exported, tmp_path, keep):
    data = exported["onnx"].read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DeploymentError, match="truncated"):
        deploy.onnx_form(cut, "cut")


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(DeploymentError, match="does not exist"):
        deploy.load_onnx(tmp_path / "nothing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(DeploymentError, match="empty"):
        deploy.load_onnx(tmp_path / "empty.onnx")


def test_disagreement_names_the_output_the_face_and_how_much():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 512)).astype(np.float32)
    ids = np.repeat(np.arange(10), 4)
    mods = np.tile(["vis", "vis", "nir", "nir"], 10)
    cand = ref.copy()
    cand[13] = rng.standard_normal(512)  # one face goes wrong
    ok = deploy.compare_embeddings(ref, ref, form="same", threshold=deploy.FLOAT_THRESHOLD, identities=ids,
                                   modalities=mods)
    assert ok.passed and ok.cos_min == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(DeploymentError, match=r"output 'embedding'.*cosine -?0\.\d+ < 0\.999 at face 13 \(identity 3, vis\)"):
        deploy.compare_embeddings(ref, cand, form="broken", threshold=deploy.FLOAT_THRESHOLD, identities=ids,
                                  modalities=mods)
    soft = deploy.compare_embeddings(ref, cand, form="broken", threshold=deploy.FLOAT_THRESHOLD, strict=False)
    assert not soft.passed and soft.worst_face == 13 and "FAIL" in soft.summary()
    with pytest.raises(DeploymentError, match="shape"):
        deploy.compare_embeddings(ref, cand[:, :128], form="wrong size", threshold=deploy.FLOAT_THRESHOLD)


def test_image_size_is_checked():
    with pytest.raises(ValueError, match="at least 32"):
        deploy.export_onnx(nn.Identity(), "x.onnx", image_size=16)
    with pytest.raises(ValueError, match="multiple of 16"):
        deploy.export_onnx(nn.Identity(), "x.onnx", image_size=100)


# --------------------------------------------------------------------------------------------
# The export command refuses before any work (issue #27, items 6 and 10)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A random-init XXS saved under an official file name and under a cache-like name."""
    folder = tmp_path_factory.mktemp("ckpt")
    state = create_edgeface("edgeface_xxs", seed=0).state_dict()
    paths = {"official": folder / "edgeface_xxs_float.pt", "own": folder / "model.pt"}
    for path in paths.values():
        torch.save(state, path)
    return paths


def _export(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["export", *argv, "--no-bench"])
    return rc, capsys.readouterr().err


def test_export_refuses_to_replace_a_file_without_overwrite(checkpoints, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"an earlier export")
    rc, err = _export(capsys, "--checkpoint", str(checkpoints["own"]), "--out", str(out), "--image-size", "64")
    assert rc == 2 and "--out" in err and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"an earlier export"  # untouched
    int8 = tmp_path / "fresh.int8-dynamic.onnx"
    int8.write_bytes(b"an earlier int8 export")
    rc, err = _export(capsys, "--checkpoint", str(checkpoints["own"]), "--out", str(tmp_path / "fresh.onnx"),
                      "--image-size", "64", "--int8", "dynamic")
    assert rc == 2 and "int8 file" in err and "--overwrite" in err
    assert not (tmp_path / "fresh.onnx").exists() and int8.read_bytes() == b"an earlier int8 export"


def test_library_export_refuses_to_replace_a_file_before_exporting(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        deploy.export_onnx(create_edgeface("edgeface_xxs", seed=0), out, image_size=64)
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        deploy.quantize_onnx_dynamic(out, out)
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("size, official, match", [
    ("100", "official", "trained on 112x112"),  # the official weights, at a size they were not trained at
    ("64", "official", "trained on 112x112"),
    ("100", "own", "multiple of 16"),  # no model is trained at 100 px here (run refuses such a layout)
])
def test_export_refuses_an_image_size_the_weights_were_not_trained_at(checkpoints, tmp_path, capsys, size, official,
                                                                        match):
    out = tmp_path / "model.onnx"
    rc, err = _export(capsys, "--checkpoint", str(checkpoints[official]), "--out", str(out), "--image-size", size)
    assert rc == 2 and re.search(match, err), err
    assert not out.exists() and not list(tmp_path.iterdir())
    assert deploy.official_input_size(checkpoints["official"]) == 112
    assert deploy.official_input_size(checkpoints["own"]) is None


# --------------------------------------------------------------------------------------------
# Atomic writing: a failed export leaves nothing behind (issue #27 item 12: a full disk left a .onnx.tmp)
# --------------------------------------------------------------------------------------------
class _Tiny(nn.Module):
    """A small module with the export's contract ((B, 3, S, S) -> (B, D)): traces in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4)
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.fixture
def full_disk(monkeypatch):
    """onnx.save_model writes half the file, then the disk is full."""
    import onnx

    def save(model, path, *args, **kwargs):
        data = model.SerializeToString()
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(onnx, "save_model", save)


def test_a_full_disk_during_export_leaves_no_tmp_and_the_old_file(tmp_path, full_disk):
    out = tmp_path / "tiny.onnx"
    with pytest.raises(OSError, match="No space left"):
        deploy.export_onnx(_Tiny(), out, image_size=32)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"the earlier export")
    with pytest.raises(OSError, match="No space left"):
        deploy.export_onnx(_Tiny(), out, image_size=32, overwrite=True)
    assert list(tmp_path.iterdir()) == [out] and out.read_bytes() == b"the earlier export"


def test_a_failed_check_leaves_no_file(tmp_path, monkeypatch):
    from hfr_tutorial.deploy import export

    def broken_check(net, image_size, shown):
        def check(written):
            raise DeploymentError("disagrees with PyTorch")
        return check

    monkeypatch.setattr(export, "_check_against_torch", broken_check)
    with pytest.raises(DeploymentError, match="disagrees"):
        deploy.export_onnx(_Tiny(), tmp_path / "tiny.onnx", image_size=32)
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_export_round_trips(tmp_path):
    info = deploy.export_onnx(_Tiny(), tmp_path / "tiny.onnx", image_size=32)
    assert info.path.is_file() and list(tmp_path.iterdir()) == [info.path]
    assert deploy.load_onnx(info.path) is not None and deploy.onnx_input_size(info.path) == 32


@pytest.mark.assets
def test_real_weights_export_at_112(assets, tmp_path):
    from PIL import Image

    from hfr_tutorial.data.spectral import simulate

    checkpoint = find_checkpoint("edgeface_xxs", [assets / "weights"])
    assert checkpoint is not None, f"no edgeface_xxs weights in {assets / 'weights'}"
    model = load_edgeface("edgeface_xxs", checkpoint).eval()
    info = deploy.export_onnx(model, tmp_path / "real.onnx", image_size=112)
    assert info.image_size == 112 and info.opset >= 18
    files = sorted((assets / "faces" / "dlib_johns" / "vis").glob("*/*"))
    vis = np.stack([np.asarray(Image.open(f).convert("RGB").resize((112, 112), Image.BILINEAR)) for f in files])
    ids = np.array([f.parent.name for f in files])
    images = np.concatenate([vis, simulate(vis, "nir", severity="mild"), simulate(vis, "thermal", severity="mild")])
    ids3, mods = np.tile(ids, 3), np.repeat(["vis", "nir", "thermal"], len(vis))
    reference = deploy.torch_form(model, "PyTorch float", image_size=112)
    agreement = deploy.check_form(deploy.onnx_form(info.path, "ONNX float"), reference, images,
                                  threshold=deploy.FLOAT_THRESHOLD, identities=ids3, modalities=mods)
    assert agreement.cos_min >= 0.999
    int8 = deploy.check_form(deploy.torch_form(deploy.quantize_torch_dynamic(model), "PyTorch int8", image_size=112),
                             reference, images, threshold=deploy.INT8_THRESHOLD, identities=ids3, modalities=mods)
    assert int8.passed, int8.summary()
    assert int8.cos_mean < 0.999  # int8 is not free on the real weights: the threshold is not vacuous


def test_export_help_names_the_overwrite_and_size_rules(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--overwrite" in text and "112" in text and "integrity checksum" in text
    assert "digest" not in text and "tamper" not in text and ":func:" not in text
