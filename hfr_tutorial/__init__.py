"""hfr-tutorial: lightweight cross-spectral face recognition, taught step by step."""
__version__ = "0.1.0"
