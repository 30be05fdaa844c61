"""Attack every graded exercise the way a student who wants the points without the work would.

For each exercise of the solved notebooks that a self-check grades, on data of the kind the notebook
uses (the smoke preset's faces, a random EdgeFace of its variant, scores and landmarks drawn as the
notebooks draw them), without executing any notebook:

* the notebook's own model solution (its solution block, run as written) passes;
* **(a) paste**: a wrong answer fails, and every number the failed check printed, submitted as the
  answer (a constant, or an array of it), fails too; the printed message holds no expected value;
* **(b) library call**: an answer that calls the library function the exercise re-implements fails,
  and the message names the call;
* **(c) shown input only**: an answer right for the input the notebook shows (a memorised value, a
  formula in a constant) fails on the check's hidden inputs.

Where an attack does not apply the registry says why (e.g. exercise 2 of notebook 06 is meant to use
``threshold_at_far``).  ``test_every_graded_exercise_is_attacked`` fails when a notebook grades an
exercise with a check this file does not attack.  The ONNX exercises of notebook 08 use small ONNX
graphs built here (no export) and skip without onnx/onnxruntime.
"""
from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hfr_tutorial import checks
from hfr_tutorial.config import get_preset
from hfr_tutorial.evaluate import apply_threshold, embed, identification_protocol, rank_k, threshold_at_far
from hfr_tutorial.models import count_parameters, create_edgeface, images_to_tensor
from hfr_tutorial.tuning import apply_policy, is_layernorm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SMOKE = get_preset("smoke")
REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")


@pytest.fixture(autouse=True)
def _lenient(monkeypatch):
    monkeypatch.delenv("HFR_STRICT_CHECKS", raising=False)


def printed_numbers(text: str) -> list[float]:
    """Every number in ``text`` (1,234 and 1.5e-3 and 40 % alike); a percent also as its fraction."""
    found = []
    for m in NUMBER.finditer(text):
        token = m.group(0)
        if not re.search(r"\d", token):
            continue
        try:
            value = float(token.replace(",", ""))
        except ValueError:
            continue
        found.append(value)
        if text[m.end():m.end() + 2].strip().startswith("%"):
            found.append(value / 100)
    return sorted(set(found))


def solution(notebook: str, cell_id: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The functions a notebook's solution block defines, executed as written (with the notebook's imports)."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    code = "\n".join(REGION.findall(cell.source))
    tree = ast.parse(code)
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert {d.name for d in defs} >= set(names), f"{notebook} cell {cell_id}: no {names} in its solution block"
    namespace: dict[str, Any] = {"np": np, "torch": torch, "F": F, "nn": nn, "math": math,
                                 "images_to_tensor": images_to_tensor, "count_parameters": count_parameters,
                                 "is_layernorm": is_layernorm}
    try:
        import onnxruntime as ort
        namespace["ort"] = ort
    except ImportError:
        pass
    exec(compile(ast.Module(body=defs, type_ignores=[]), f"{notebook}:{cell_id}", "exec"), namespace)
    return {name: namespace[name] for name in names}


# --------------------------------------------------------------------------------------------
# Data of the kind the notebooks use (the smoke preset)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    from PIL import Image

    from hfr_tutorial.artifacts import load_faceset

    torch.manual_seed(0)
    faceset = load_faceset(SMOKE, progress=False)
    eval_set = faceset.select(split="eval")
    small = np.stack([np.asarray(Image.fromarray(im).resize((16, 16), Image.BILINEAR)) for im in eval_set.images])
    pixels = small.reshape(len(small), -1).astype(np.float32) / 255          # notebook 00
    g_idx, p_idx = identification_protocol(eval_set.identities, eval_set.modalities, "nir", "vis")
    model = create_edgeface(SMOKE.train.variant).eval()                      # a stand-in for the baseline
    train = faceset.select(split="train")
    vis = train.select(modality="vis").images[:SMOKE.train.batch_size]
    other = train.select(modality="thermal").images[:SMOKE.train.batch_size]
    emb_vis, emb_other = (torch.as_tensor(embed(model, x, progress=False)) * 3.0 for x in (vis, other))
    rng = np.random.default_rng(7)
    genuine, impostor = rng.normal(0.6, 0.12, 400), rng.normal(0.12, 0.13, 8000)   # notebook 06's regime
    scores = np.concatenate([genuine, impostor])
    same = np.r_[np.ones(genuine.size, bool), np.zeros(impostor.size, bool)]
    dev_scores = np.concatenate([rng.normal(0.6, 0.12, 400), rng.normal(0.12, 0.13, 8000)])
    return {"pixels": pixels, "probes": pixels[p_idx], "gallery": pixels[g_idx],
            "gallery_labels": eval_set.identities[g_idx], "probe_labels": eval_set.identities[p_idx],
            "model": model, "thermal": eval_set.select(modality="thermal").images[:8],
            "vis_e": emb_vis, "other_e": emb_other, "T": SMOKE.train.temperature, "B": SMOKE.train.batch_size,
            "student": emb_other[:16] / 3, "teacher": emb_vis[:16] * 0.5,
            "scores": scores, "same": same, "dev_scores": dev_scores,
            "shape68": np.random.default_rng(7).uniform(0, 112, size=(68, 2))}


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory) -> dict[str, Any]:
    """Two small ONNX 'face models' (a linear map of a 32x32 face to 64 numbers), written with onnx.helper."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path_factory.mktemp("onnx")
    rng = np.random.default_rng(0)
    files = {}
    for name in ("float", "int8-like"):
        weight = rng.normal(size=(3 * 32 * 32, 64)).astype(np.float32) / 50
        graph = helper.make_graph(
            [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["embedding"])],
            f"face-{name}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 64])],
            [numpy_helper.from_array(weight, "W")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        files[name] = path
    faces = np.random.default_rng(1).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    files["faces"] = faces
    return files


# --------------------------------------------------------------------------------------------
# The registry: one entry per graded exercise
# --------------------------------------------------------------------------------------------
@dataclass
class Exercise:
    """How to grade one exercise, and the three attacks on it (``None``: the attack does not apply, see ``why``)."""

    name: str
    check: str                                   # the check function the notebook calls
    grade: Callable[[dict, Any], bool]           # run the notebook's check on ``data`` with an answer
    model: Callable[[dict], Any]                 # the model answer (from the notebook's solution block)
    wrong: Callable[[dict], Any]                 # a wrong answer, whose message a student would paste from
    paste: Callable[[dict, float], Any]          # an answer built from one printed number
    library: Callable[[dict], Any] | None        # an answer that calls the re-implemented library function
    shown_only: Callable[[dict], Any] | None     # an answer right for the shown input only
    why: str = ""
    onnx: bool = False
    reference: Callable[[dict], float] | None = None  # the right value on the shown input (a scalar exercise)


def _const(value: Any) -> Callable[..., Any]:
    return lambda *args, **kwargs: value


def _nb(notebook: str, cell: str, *names: str) -> Callable[[dict], Any]:
    def get(d: dict) -> Any:
        functions = solution(notebook, cell, names)
        return functions[names[0]] if len(names) == 1 else functions
    return get


def _memorised(reference: Callable[[dict], Any]) -> Callable[[dict], Any]:
    """An answer that returns the shown input's right answer whatever it is given."""
    return lambda d: _const(reference(d))


def _embed_attack(d: dict) -> Any:
    return lambda model, images: embed(model, images, progress=False)


def _infonce_lib(d: dict) -> Any:
    from hfr_tutorial.losses import CrossModalInfoNCE
    return lambda vis, other, t: CrossModalInfoNCE(temperature=t)(vis, other)


def _distill_lib(kind: str) -> Callable[[dict], Any]:
    def make(d: dict) -> Any:
        from hfr_tutorial.losses import SelfDistillationLoss
        return lambda s, t, lam: SelfDistillationLoss(weight=lam, kind=kind)(s, t)
    return make


def _distill_ref(kind: str) -> Callable[[dict], float]:
    def ref(d: dict) -> float:
        from hfr_tutorial.losses import SelfDistillationLoss
        return float(SelfDistillationLoss(weight=10.0, kind=kind)(d["student"], d["teacher"]))
    return ref


def _names_policy(policy: str) -> Callable[[dict], Any]:
    """An answer that hard-codes the parameter names of the shown model (right for it, not for another variant)."""
    from hfr_tutorial.tuning import policy_parameter_names

    def make(d: dict) -> Any:
        names = policy_parameter_names(create_edgeface(SMOKE.train.variant), policy)

        def hard_coded(model):
            for name, p in model.named_parameters():
                p.requires_grad_(name in names)
        return hard_coded
    return make


def _policy_paste(d: dict, x: float) -> Any:
    def set_count(model):  # the printed number read as a count of parameters to unfreeze, first come first served
        model.requires_grad_(False)
        left = int(abs(x))
        for p in model.parameters():
            if left >= p.numel():
                p.requires_grad_(True)
                left -= p.numel()
    return set_count


def _grade_policy(policy: str) -> Callable[[dict, Any], bool]:
    return lambda d, fn: checks.check_policy_function(fn, policy, lambda: create_edgeface(SMOKE.train.variant))


def _eer_ref(d: dict) -> float:
    from hfr_tutorial.evaluate import verification_metrics
    return verification_metrics(d["scores"], d["same"])["eer"]


def _smallest(a, b):
    return float((np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


EXERCISES = [
    Exercise("00 ex1 similarity", "check_similarity_function",
             lambda d, fn: checks.check_similarity_function(fn, d["probes"], d["gallery"]),
             _nb("00_data_and_modality_gap", "dd1310b2", "my_similarity"),
             wrong=lambda d: (lambda p, g: p @ g.T),
             paste=lambda d, x: _const(np.full((len(d["probes"]), len(d["gallery"])), x)),
             library=lambda d: (lambda p, g: __import__("hfr_tutorial.evaluate", fromlist=["l2_normalize"])
                                .l2_normalize(p) @ __import__("hfr_tutorial.evaluate", fromlist=["l2_normalize"])
                                .l2_normalize(g).T),
             shown_only=_memorised(lambda d: (d["probes"] / np.linalg.norm(d["probes"], axis=1, keepdims=True))
                                   @ (d["gallery"] / np.linalg.norm(d["gallery"], axis=1, keepdims=True)).T)),
    Exercise("00 ex1 rank-1", "check_rank1_function",
             lambda d, fn: checks.check_rank1_function(fn, _cos(d), d["gallery_labels"], d["probe_labels"]),
             _nb("00_data_and_modality_gap", "dd1310b2", "my_rank1"),
             wrong=lambda d: (lambda s, g, p: float(np.mean(s.argmax(axis=0)[: len(p)] == p))),
             paste=lambda d, x: _const(x),
             library=lambda d: (lambda s, g, p: rank_k(s, g, p, ks=(1,))[1]),
             shown_only=_memorised(lambda d: rank_k(_cos(d), d["gallery_labels"], d["probe_labels"], ks=(1,))[1])),
    Exercise("01 ex1 embed", "check_embed_function",
             lambda d, fn: checks.check_embed_function(fn, d["model"], d["thermal"]),
             _nb("01_baseline_rgb_model", "3448da4f", "my_embed"),
             wrong=lambda d: (lambda m, im: F.normalize(m(torch.as_tensor(im).permute(0, 3, 1, 2).float() / 255), dim=1)),
             paste=lambda d, x: _const(np.full((len(d["thermal"]), 512), x)),
             library=_embed_attack,
             shown_only=_memorised(lambda d: embed(d["model"], d["thermal"], progress=False))),
    Exercise("02 ex1 layernorm policy", "check_policy_function", _grade_policy("layernorm"),
             _nb("02_layer_freezing", "7db5bd16", "my_layernorm_policy"),
             wrong=lambda d: (lambda m: None),
             paste=_policy_paste,
             library=lambda d: (lambda m: apply_policy(m, "layernorm")),
             shown_only=_names_policy("layernorm")),
    Exercise("03 ex1 InfoNCE", "check_infonce_function",
             lambda d, fn: checks.check_infonce_function(fn, d["vis_e"], d["other_e"], d["T"]),
             _nb("03_contrastive_alignment", "bb185e27", "my_infonce"),
             wrong=lambda d: _const(0.0), paste=lambda d, x: _const(x), library=_infonce_lib,
             shown_only=_memorised(lambda d: float(_infonce_lib(d)(d["vis_e"], d["other_e"], d["T"]))),
             reference=lambda d: float(_infonce_lib(d)(d["vis_e"], d["other_e"], d["T"]))),
    Exercise("03 ex2 InfoNCE at chance", "check_chance_function",
             lambda d, fn: checks.check_chance_function(fn, d["B"], temperature=d["T"]),
             _nb("03_contrastive_alignment", "9be62d77", "chance_loss"),
             wrong=lambda d: (lambda b: 0.0), paste=lambda d, x: _const(x),
             library=lambda d: (lambda b: _infonce_lib(d)(torch.ones(b, 8), torch.ones(b, 8), d["T"])),
             shown_only=lambda d: (lambda b: math.log(SMOKE.train.batch_size)),
             reference=lambda d: math.log(d["B"])),
    Exercise("04 ex1 cosine distillation", "check_distillation_function",
             lambda d, fn: checks.check_distillation_function(fn, "cosine", d["student"], d["teacher"], 10.0),
             _nb("04_self_distillation", "affb4b73", "my_distill"),
             wrong=lambda d: _const(0.0), paste=lambda d, x: _const(x), library=_distill_lib("cosine"),
             shown_only=lambda d: _const(_distill_ref("cosine")(d)), reference=_distill_ref("cosine")),
    Exercise("04 ex2 MSE distillation", "check_distillation_function",
             lambda d, fn: checks.check_distillation_function(fn, "mse", d["student"], d["teacher"], 10.0),
             _nb("04_self_distillation", "e7602ff3", "my_mse"),
             wrong=lambda d: _const(1.0), paste=lambda d, x: _const(x), library=_distill_lib("mse"),
             shown_only=lambda d: _const(_distill_ref("mse")(d)), reference=_distill_ref("mse")),
    Exercise("05 ex1 layernorm+stem policy", "check_policy_function", _grade_policy("layernorm+stem"),
             _nb("05_full_training", "e4d2a0a6", "my_layernorm_stem_policy"),
             wrong=lambda d: (lambda m: m.requires_grad_(False)),
             paste=_policy_paste,
             library=lambda d: (lambda m: apply_policy(m, "layernorm+stem")),
             shown_only=_names_policy("layernorm+stem")),
    Exercise("05 ex1 trainable share", "check_share_function",
             lambda d, fn: checks.check_share_function(fn, lambda: create_edgeface(SMOKE.train.variant),
                                                       model=_stem_model()),
             _nb("05_full_training", "e4d2a0a6", "my_share"),
             wrong=lambda d: _const(50.0), paste=lambda d, x: _const(x),
             library=lambda d: (lambda m: 100 * apply_policy(m, "layernorm+stem").fraction),
             shown_only=lambda d: _const(100 * apply_policy(_stem_model(), "layernorm+stem").fraction),
             reference=lambda d: 100 * apply_policy(_stem_model(), "layernorm+stem").fraction),
    Exercise("06 ex1 EER", "check_eer_function",
             lambda d, fn: checks.check_eer_function(fn, d["scores"], d["same"]),
             _nb("06_evaluation", "c2f58b80", "my_eer"),
             wrong=lambda d: _const(0.5), paste=lambda d, x: _const(x),
             library=lambda d: (lambda s, y: __import__("hfr_tutorial.evaluate", fromlist=["x"])
                                .verification_metrics(s, y)["eer"]),
             shown_only=lambda d: _const(_eer_ref(d)), reference=_eer_ref),
    Exercise("06 ex2 threshold at FAR = 1e-1", "check_threshold",
             lambda d, thr: checks.check_threshold(thr, d["dev_scores"], d["same"], 0.1),
             lambda d: threshold_at_far(d["dev_scores"], d["same"], 0.1),
             wrong=lambda d: 0.0, paste=lambda d, x: x, library=None, shown_only=None,
             why="the exercise is the dev/eval rule: it asks for threshold_at_far, and its answer is one value",
             reference=lambda d: threshold_at_far(d["dev_scores"], d["same"], 0.1)),
    Exercise("07 ex1 five points", "check_five_points_function",
             lambda d, fn: checks.check_five_points_function(fn, d["shape68"]),
             _nb("07_real_edgeface", "0fdb5ba7", "my_five_points"),
             wrong=lambda d: (lambda p: p[[36, 42, 30, 48, 54]]),
             paste=lambda d, x: _const(np.full((5, 2), x)),
             library=lambda d: __import__("hfr_tutorial.data.detect", fromlist=["five_points"]).five_points,
             shown_only=_memorised(lambda d: __import__("hfr_tutorial.data.detect", fromlist=["five_points"])
                                   .five_points(d["shape68"]))),
    Exercise("07 ex2 gains from alignment", "check_close",
             lambda d, gain: checks.check_close(gain, 0.4412, "the gain from alignment of deepface9"),
             lambda d: 0.4412, wrong=lambda d: 0.0, paste=lambda d, x: x, library=None, shown_only=None,
             why="the exercise reads two figures from section 2's table (nothing to re-implement, no formula)",
             reference=lambda d: 0.4412),
    Exercise("08 ex2 int8 size", "check_int8_size_function",
             lambda d, fn: checks.check_int8_size_function(fn, d["model"]),
             _nb("08_edge_deployment", "4371de13", "predict_int8_bytes"),
             wrong=lambda d: _const(1), paste=lambda d, x: _const(x),
             library=lambda d: (lambda m: __import__("hfr_tutorial.deploy", fromlist=["torch_file_size"])
                                .torch_file_size(__import__("hfr_tutorial.deploy", fromlist=["x"])
                                                 .quantize_torch_dynamic(m))),
             shown_only=lambda d: _const(checks.int8_dynamic_bytes(d["model"])),
             reference=lambda d: checks.int8_dynamic_bytes(d["model"])),
    Exercise("08 ex1 smallest cosine", "check_min_cosine_function",
             lambda d, fn: checks.check_min_cosine_function(fn),
             _nb("08_edge_deployment", "75aecb90", "smallest_cosine"),
             wrong=lambda d: _const(0.0), paste=lambda d, x: _const(x),
             library=lambda d: (lambda a, b: __import__("hfr_tutorial.deploy", fromlist=["x"]).compare_embeddings(
                 a, b, form="x", threshold=__import__("hfr_tutorial.deploy", fromlist=["x"]).FLOAT_THRESHOLD,
                 strict=False).cos_min),
             shown_only=lambda d: _const(1.0)),  # what float ONNX and PyTorch give on the notebook's faces
    Exercise("08 ex1 ONNX embeddings", "check_onnx_embed_function",
             lambda d, fn: checks.check_onnx_embed_function(fn, d["onnx"]["float"], d["onnx"]["faces"][:30],
                                                            hidden_path=d["onnx"]["int8-like"],
                                                            hidden_faces=d["onnx"]["faces"][30:]),
             _nb("08_edge_deployment", "75aecb90", "onnx_embeddings"),
             wrong=lambda d: (lambda path, faces: np.zeros((len(faces), 64))),
             paste=lambda d, x: (lambda path, faces: np.full((len(faces), 64), x)),
             library=lambda d: (lambda path, faces: __import__("hfr_tutorial.deploy", fromlist=["x"]).embed_form(
                 __import__("hfr_tutorial.deploy", fromlist=["x"]).onnx_form(path, "x"), faces)),
             shown_only=lambda d: (lambda path, faces, _f=d["onnx"]["float"], _x=d["onnx"]["faces"][:30]:
                                   _plain_onnx(_f, _x)),
             onnx=True),
    Exercise("08 ex3 VIS-calibrated agreement", "check_calibrated_agreement",
             lambda d, v: checks.check_calibrated_agreement(v, d["onnx"]["int8-like"], d["onnx"]["faces"],
                                                            _plain_onnx(d["onnx"]["float"], d["onnx"]["faces"]),
                                                            not_path=d["onnx"]["float"]),
             lambda d: float(np.mean(np.sum(_unit(_plain_onnx(d["onnx"]["int8-like"], d["onnx"]["faces"]))
                                            * _unit(_plain_onnx(d["onnx"]["float"], d["onnx"]["faces"])), axis=1))),
             wrong=lambda d: 1.0, paste=lambda d, x: x, library=None, shown_only=None,
             why="the exercise is to build the model with quantize_onnx_static and measure it: the check recomputes "
                 "the figure from the student's file", onnx=True,
             reference=lambda d: float(np.mean(np.sum(_unit(_plain_onnx(d["onnx"]["int8-like"], d["onnx"]["faces"]))
                                                      * _unit(_plain_onnx(d["onnx"]["float"], d["onnx"]["faces"])),
                                                      axis=1)))),
]


def _stem_model() -> nn.Module:
    """The notebook's model after exercise 1's policy: EdgeFace with layernorm+stem trainable."""
    model = create_edgeface(SMOKE.train.variant)
    apply_policy(model, "layernorm+stem")
    return model


def _cos(d: dict) -> np.ndarray:
    return _unit(d["probes"]) @ _unit(d["gallery"]).T


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _plain_onnx(path: Path, faces: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images_to_tensor(faces).numpy()})[0]


@pytest.fixture
def d(request, data) -> dict:
    exercise = request.node.callspec.params["exercise"]
    if exercise.onnx:
        data = {**data, "onnx": request.getfixturevalue("onnx_files")}
    return data


IDS = [e.name for e in EXERCISES]


# --------------------------------------------------------------------------------------------
# The attacks
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_the_notebooks_model_answer_passes(exercise, d, capsys):
    assert exercise.grade(d, exercise.model(d)) is True, capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_a_pasted_printed_number_fails(exercise, d, capsys):
    """(a) Submit a wrong answer, read every number the failed check printed, submit each: all fail."""
    assert exercise.grade(d, exercise.wrong(d)) is False
    message = capsys.readouterr().out
    assert "Not yet" in message and "expected" not in message.lower(), message
    numbers = printed_numbers(message)
    if exercise.reference is not None:
        ref = float(exercise.reference(d))
        near = [x for x in numbers if abs(x - ref) <= max(5e-5, 1e-4 * abs(ref))]
        assert not near, f"the failed check printed the expected value {ref} ({near}): {message!r}"
    for x in numbers:
        assert exercise.grade(d, exercise.paste(d, x)) is False, f"pasting {x} from {message!r} passed"
    capsys.readouterr()


@pytest.mark.parametrize("exercise", [e for e in EXERCISES if e.library is not None],
                         ids=[e.name for e in EXERCISES if e.library is not None])
def test_calling_the_library_function_fails(exercise, d, capsys):
    """(b) The library function the exercise re-implements gives the right values, and still fails."""
    answer = exercise.library(d)
    assert exercise.grade(d, answer) is False
    message = capsys.readouterr().out
    assert "your function calls" in message, message


@pytest.mark.parametrize("exercise", [e for e in EXERCISES if e.shown_only is not None],
                         ids=[e.name for e in EXERCISES if e.shown_only is not None])
def test_an_answer_right_only_for_the_shown_input_fails(exercise, d, capsys):
    """(c) A memorised value, or a formula in a constant, is right on the shown input and fails on hidden ones."""
    assert exercise.grade(d, exercise.shown_only(d)) is False
    message = capsys.readouterr().out
    assert "hidden" in message, message


def test_attacks_not_applied_say_why():
    for exercise in EXERCISES:
        if exercise.library is None or exercise.shown_only is None:
            assert exercise.why, f"{exercise.name}: say why an attack does not apply"


def test_printed_numbers_reads_what_checks_print():
    assert printed_numbers("yours, 2.0000, 1,244,744 of 3 and 1.5e-3; 40 % x2 T = 0.07") == sorted(
        {2.0, 1244744.0, 3.0, 1.5e-3, 40.0, 0.4, 0.07})


# --------------------------------------------------------------------------------------------
# Every graded exercise of the notebooks is in the registry
# --------------------------------------------------------------------------------------------
UNGRADED = {"check_prediction", "check_answer"}
"""Checks of the form of a prediction or an explanation: nothing to paste, call or memorise (graded by a person)."""


def test_every_graded_exercise_is_attacked():
    attacked = {e.check for e in EXERCISES}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
                continue
            called = set(re.findall(r"\b(check_\w+)\(", REGION.sub("", cell.source)))
            missing = called - attacked - UNGRADED
            assert not missing, f"{path.name} cell {cell.get('id')}: {sorted(missing)} not attacked in this file"
