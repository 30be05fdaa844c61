#!/usr/bin/env bash
# Execute the solved notebooks in order, in place, with one shared cache, and regenerate the
# student copies. This is how the committed outputs are produced:
#   HFR_PRESET=fast bash tools/execute_notebooks.sh [NN ...]
# HFR_STATIC_WIDGETS=1 makes the explorers save static figures (a saved notebook cannot keep a
# live widget's picture). Run times per notebook are printed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TQDM_DISABLE=1 HFR_PRESET="${HFR_PRESET:-fast}" HFR_STATIC_WIDGETS=1 HFR_STRICT_CHECKS=1 MPLBACKEND=module://matplotlib_inline.backend_inline
PY=.venv/bin/python
selected=("$@")
report=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  name=$(basename "$nb" .ipynb)
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " =~ " ${name:0:2} " ]]; then continue; fi
  start=$(date +%s)
  (cd notebooks && "../$PY" -m jupyter nbconvert --to notebook --execute --inplace \
      --ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.kernel_name=python3 "$(basename "$nb")")
  $PY tools/clean_outputs.py "$nb"  # no progress bars, warnings or lock waits in the saved outputs
  report+=("$name: $(( $(date +%s) - start )) s")
done
$PY tools/make_student.py
printf '%s\n' "${report[@]}"
