"""A new layer kind is one new file: every module of `i2dl_dsl.layers` is
imported, with no list to extend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import i2dl_dsl

PROBE = '''
from .base import Layer, register


@register
class Probe(Layer):
    kind = "probe_layer"
'''


def test_a_new_layer_module_is_registered_without_being_listed(tmp_path):
    # A copy of the package, so that the source tree is never written to.
    package = tmp_path / "i2dl_dsl"
    shutil.copytree(Path(i2dl_dsl.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "layers" / "probe.py").write_text(PROBE)
    code = "from i2dl_dsl.layers import REGISTRY; print('probe_layer' in REGISTRY)"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True"
