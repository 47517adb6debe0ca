"""Set-up and packaging: the README's commands, scripts/setup.sh's project
environment, `--version`, and onnxruntime builds that break each other."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import i2dl_dsl
from i2dl_dsl import runtime
from i2dl_dsl.cli.compile import main as compile_main
from i2dl_dsl.cli.run import main as run_main
from i2dl_dsl.cli.train import main as train_main
from i2dl_dsl.diagnostics import UserError

ROOT = Path(__file__).resolve().parents[1]


def readme_setup_commands() -> list[str]:
    """The commands of the README's "Set-up" code block, comments left out."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim():
    commands = readme_setup_commands()
    assert len(commands) == 2
    test_command = next(c for c in commands if "--test" in c and "pytest" in c)
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()]
    assert test_command in ci


def test_the_readme_commands_use_the_project_environment():
    for command in readme_setup_commands():
        assert command.startswith("scripts/setup.sh")
        assert ".venv/bin/" in command  # the console scripts and pytest of .venv, not the system's


# ----------------------------------------------------------------- scripts/setup.sh with stand-ins

FAKE_PYTHON = """#!/bin/bash
# python3 without venv until apt-get has installed python3.X-venv
echo "python3 $*" >> "$LOG"
case "$*" in
    *version_info\\ \\<*) exit 0 ;;
    *print*) echo 3.11 ;;
    "-m venv .venv")
        [ -e "$STATE/venv-installed" ] || { echo "ensurepip is not available" >&2; mkdir -p .venv; exit 1; }
        mkdir -p .venv/bin
        printf '#!/bin/bash\\necho "venv-python $*" >> "$LOG"\\n' > .venv/bin/python
        chmod +x .venv/bin/python ;;
    *) exit 1 ;;
esac
"""
FAKE_APT = """#!/bin/bash
echo "apt-get $*" >> "$LOG"
case "$*" in *install*venv*) touch "$STATE/venv-installed" ;; esac
"""
FAKE_SUDO = """#!/bin/bash
"$@"
"""


def _stand_ins(tmp_path: Path) -> dict[str, str]:
    """A copy of scripts/setup.sh and a PATH whose python3, apt-get, sudo and
    dot are stand-ins that log what they are asked to do."""
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "repo" / "scripts" / "setup.sh")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in {"python3": FAKE_PYTHON, "apt-get": FAKE_APT, "sudo": FAKE_SUDO, "dot": "#!/bin/sh\n"}.items():
        (bin_ / name).write_text(text, encoding="utf-8")
        (bin_ / name).chmod(0o755)
    return {"PATH": f"{bin_}:/usr/bin:/bin", "LOG": str(tmp_path / "log"), "STATE": str(tmp_path)}


def test_setup_installs_debian_venv_when_missing_then_installs_into_the_environment(tmp_path):
    env = _stand_ins(tmp_path)
    done = subprocess.run(["bash", "scripts/setup.sh", "--test"], cwd=tmp_path / "repo", env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "log").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("apt-get install") and "python3.11-venv" in line for line in log)
    assert log.count("python3 -m venv .venv") == 2  # failed, then made after the install
    installs = [line for line in log if line.startswith("venv-python -m pip install")]
    assert installs[0].endswith(" -e .")
    assert installs[1].endswith(" -e .[test] torch==2.13.0")
    assert installs[2].endswith(" --no-deps torchvision==0.28.0")
    assert not any("pip install" in line for line in log if line.startswith("python3 "))  # never the system's


def test_setup_reuses_a_working_environment_and_refuses_unknown_options(tmp_path):
    env = _stand_ins(tmp_path)
    (tmp_path / "venv-installed").touch()
    for _ in range(2):
        subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path / "repo", env=env, check=True, timeout=60)
    log = (tmp_path / "log").read_text(encoding="utf-8").splitlines()
    assert log.count("python3 -m venv .venv") == 1
    assert not any(line.startswith("apt-get") for line in log)
    wrong = subprocess.run(["bash", "scripts/setup.sh", "--tests"], cwd=tmp_path / "repo", env=env,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "usage: scripts/setup.sh [--test]" in wrong.stderr


# ----------------------------------------------------------------- --version


@pytest.mark.parametrize("command, main", [("i2dl-compile", compile_main), ("i2dl-run", run_main),
                                           ("i2dl-train", train_main)])
def test_every_command_prints_its_version(command, main, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"{command} {i2dl_dsl.__version__}"


def _pyproject_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "(.+)"', text, re.M).group(1)


def test_the_version_is_the_distribution_s_else_pyproject_s(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.8.7")
    assert i2dl_dsl.__version__ == "9.8.7"

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert i2dl_dsl.__version__ == _pyproject_version()


def test_importing_the_package_loads_nothing_heavy():
    heavy = ("numpy", "onnx", "lark", "importlib.metadata")
    code = f"import sys, i2dl_dsl; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------- two onnxruntime builds


def _installed(monkeypatch, *names: str) -> None:
    real = importlib.metadata.distribution

    def distribution(name):
        if name in runtime._ORT_DISTRIBUTIONS:
            if name in names:
                return real("onnx")  # any installed distribution stands in
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_both_onnxruntime_builds_installed_is_an_error_that_says_what_to_do(monkeypatch):
    _installed(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    with pytest.raises(UserError) as error:
        runtime._ort()
    assert "onnxruntime and onnxruntime-gpu are both installed" in error.value.message
    assert error.value.hints == (f"run: {sys.executable} -m pip uninstall -y onnxruntime onnxruntime-gpu && "
                                 f"{sys.executable} -m pip install onnxruntime-gpu",)


def test_a_broken_onnxruntime_module_is_an_error_that_says_what_to_do(monkeypatch):
    _installed(monkeypatch, "onnxruntime-gpu")
    monkeypatch.setitem(sys.modules, "onnxruntime", types.ModuleType("onnxruntime"))  # no native part
    with pytest.raises(UserError) as error:
        runtime._ort()
    assert "the module 'onnxruntime' of onnxruntime-gpu is broken" in error.value.message
    assert "uninstall -y onnxruntime onnxruntime-gpu" in error.value.hints[0]


def test_one_working_onnxruntime_passes(monkeypatch):
    _installed(monkeypatch, "onnxruntime-gpu")
    assert hasattr(runtime._ort(), "InferenceSession")


def test_the_clash_exits_2_from_a_command(monkeypatch, capsys, tmp_path):
    _installed(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    assert run_main(["lenet5", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "both installed" in err and "pip install onnxruntime-gpu" in err
