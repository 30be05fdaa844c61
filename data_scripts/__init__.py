"""Converters from licensed heterogeneous-face datasets to the hfr-tutorial standard layout.

Run one as a script (``python data_scripts/<name>.py --root ... --out ...``) or as a module from
the repository root (``python -m data_scripts.<name> ...``); see ``data_scripts/README.md``.
"""
