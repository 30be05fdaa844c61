"""What a result was measured on: one description of the environment, for every record."""
from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys

import numpy as np
import torch

from hfr_tutorial.environment import describe_environment, machine_description


def test_describe_environment_names_the_versions_and_the_machine():
    env = describe_environment(threads=3)
    assert env["python"] == platform.python_version() and env["torch"] == torch.__version__
    assert env["numpy"] == np.__version__ and env["timm"] and env["threads"] == 3
    assert env["cpu"] and env["logical_cores"] >= 1 and env["platform"]
    assert ("onnxruntime" in env) == (importlib.util.find_spec("onnxruntime") is not None)
    assert describe_environment()["threads"] == torch.get_num_threads()


def test_machine_description_adds_the_int8_engine():
    machine = machine_description(2)
    assert machine["threads"] == 2 and machine["quantized_engine"] == torch.backends.quantized.engine
    assert {k: v for k, v in machine.items() if k != "quantized_engine"} == describe_environment(2)


def test_environment_is_a_leaf():
    code = ("import sys, hfr_tutorial.environment; "
            "print(sorted(m for m in sys.modules if m.startswith('hfr_tutorial.') or m in ('timm', 'onnxruntime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hfr_tutorial.environment']"  # versions read without importing timm or onnxruntime
