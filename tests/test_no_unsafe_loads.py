"""No file of the project reads a pickle that can run code: ``torch.load`` always with ``weights_only=True``
(a shared, writable HFR_CACHE or a weights file must never run planted code, issue #27)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> list[Path]:
    return [p for folder in ("hfr_tutorial", "benchmarks", "data_scripts", "tools") for p in (ROOT / folder).rglob("*.py")]


def test_no_weights_only_false_anywhere():
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if re.search(r"weights_only\s*=\s*False", p.read_text())]
    assert offenders == [], f"torch.load(..., weights_only=False) in {offenders}: store non-tensor state as JSON"


def test_every_torch_load_says_weights_only_true():
    bad = []
    for path in _sources():
        for m in re.finditer(r"torch\.load\((?:[^()]|\([^()]*\))*\)", path.read_text()):
            if "weights_only=True" not in m.group(0):
                bad.append(f"{path.relative_to(ROOT)}: {m.group(0)[:80]}")
    assert bad == [], bad
