"""Repository-level pytest hooks (the notebooks are collected from here by nbval).

nbval waits only 5 s for a cell's outputs once the kernel has replied; after a cell that trained
a model for minutes on 2 busy cores the kernel can take longer than that to flush its output, and
nbval then kills the kernel ("Timeout of 5 seconds exceeded waiting for output"). Give it a
minute instead; the cell's own execution limit (--nbval-cell-timeout) is unchanged.
"""
from __future__ import annotations

NBVAL_OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
