"""hfr-tutorial: lightweight cross-spectral face recognition, taught step by step."""
# The one place the version is written: pyproject.toml reads it (`dynamic = ["version"]`), and so
# do CITATION.cff's tests and the command line's --version.
__version__ = "0.1.0"
