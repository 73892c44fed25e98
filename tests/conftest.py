"""Shared fixtures: a session-wide MNIST-1D cache and a config composer for in-process runs."""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fusionlab.cli import setup

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel test processes: one torch thread each, also in subprocesses
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
CONF = ROOT / "conf"


@pytest.fixture(autouse=True)
def _restore_sigint():
    """A test must not leave Ctrl-C ignored in this process: ignored signals stay ignored in every child
    it starts later (exec keeps SIG_IGN), and a child Python that starts with SIGINT ignored never turns
    Ctrl-C into KeyboardInterrupt (Lightning ignores SIGINT during its own Ctrl-C clean-up)."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not handler:
        warnings.warn(f"the test left SIGINT handled by {signal.getsignal(signal.SIGINT)!r}; restored", stacklevel=1)
        signal.signal(signal.SIGINT, handler)


@pytest.fixture(autouse=True)
def _restore_threads():
    """A test that runs a job in-process with ``threads=n`` must not change the next test's torch threads."""
    threads, env = torch.get_num_threads(), {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    yield
    torch.set_num_threads(threads)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNIST-1D cache for the whole session (generation takes about a second)."""
    path = Path(os.environ.get("FUSIONLAB_TEST_DATA_DIR", tmp_path_factory.mktemp("data")))
    return path


def compose_cfg(overrides: list[str], out_dir: Path, data_dir: Path, config_name: str = "train") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as the CLI would, with run folders under ``out_dir``."""
    setup()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.paths.log_dir = str(out_dir)
        cfg.paths.data_dir = str(data_dir)
        del cfg.hydra
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path, data_dir: Path):
    """``make_cfg(overrides)`` → a composed training config writing into this test's tmp folder."""

    def _make(overrides: list[str] | None = None, out: Path | None = None, config_name: str = "train"):
        return compose_cfg(list(overrides or []), out or tmp_path, data_dir, config_name)

    return _make


def run_cli(script: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300):
    """Run ``python <script> args`` as a user would; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, script, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


class _CliWorker:
    """One :mod:`tests.cli_worker` process per test process, started on first use."""

    proc: subprocess.Popen | None = None

    @classmethod
    def run(cls, request: dict, timeout: float) -> dict:
        if cls.proc is None or cls.proc.poll() is not None:
            cls.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_worker.py")], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
            atexit.register(cls.proc.kill)
        proc = cls.proc
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:  # timed out or died: the next request starts a fresh worker
            proc.kill()
            cls.proc = None
            raise subprocess.TimeoutExpired(request["script"], timeout) if not ready else \
                RuntimeError(f"the CLI worker died running {request['script']} {request['args']}")
        return json.loads(line)


def run_cli_shared(script: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300):
    """:func:`run_cli` for command lines that stop at a config or data error or train briefly: the script
    (or, with ``script="-m"``, the module named by the first argument) runs as ``__main__`` with these argv,
    working directory and environment, in a long-lived process started with ``sys.executable``
    (:mod:`tests.cli_worker`), so torch and Lightning are imported once per test process instead of once per
    command line. Not for what needs a process of its own: signals, kills, launchers that start processes,
    DDP, PYTHONPATH plug-ins. Returns a CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    request = {"script": script, "args": list(args), "cwd": str(cwd), "env": full_env}
    reply = _CliWorker.run(request, timeout)
    return subprocess.CompletedProcess([sys.executable, script, *args], reply["returncode"], reply["stdout"],
                                       reply["stderr"])


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# Model presets made only of branch kinds and an arrangement that other presets hold (each stand-in listed):
# the slow per-preset matrices (export to the three formats, compilation) check the stand-ins and skip these,
# pairwise coverage as the config matrix's presets x fusions. A preset not listed (every new one) is checked.
COVERED_BY = {
    "cnn_rnn": ("cnn_rnn_transformer",),  # the same CNN and GRU branches side by side, a third beside them
    "cnn_transformer": ("cnn_rnn_transformer",),
    "rnn_transformer": ("cnn_rnn_transformer",),
    "cnn": ("cnn_rnn_transformer", "inception"),  # the same branch side by side; one branch alone: inception
    "rnn": ("cnn_rnn_transformer", "inception"),
    "transformer": ("cnn_rnn_transformer", "inception"),
    "cnntransformer_rnn": ("cnnrnn_transformer", "cnn_rnn_transformer"),  # a stacked pair beside a branch
    "inception_rnn": ("inception", "cnn_rnn_transformer"),  # inception checked alone, the GRU beside others
    "inception_transformer": ("inception", "cnn_rnn_transformer"),
    "inception_resnet": ("inception", "resnet", "cnn_rnn_transformer"),
    "fcn": ("lstm_fcn", "inception"),  # lstm_fcn holds the same FCN branch beside its LSTM
}


def experiments_with_branch(branch: str) -> tuple[str, ...]:
    """The experiments of ``conf/experiment`` whose defaults add ``branch=<branch>``, directly or through
    the experiment they extend (read from the YAML files, so a new preset is found without a list)."""
    import yaml

    def defaults(name: str) -> list:
        path = CONF / "experiment" / f"{name}.yaml"
        return (yaml.safe_load(path.read_text()) or {}).get("defaults", []) if path.is_file() else []

    def has(name: str) -> bool:
        for entry in defaults(name):
            if isinstance(entry, dict) and any(k.startswith("/branch@") and v == branch for k, v in entry.items()):
                return True
            if isinstance(entry, str) and entry not in ("_self_", name) and has(entry):
                return True
        return False

    return tuple(sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if has(p.stem)))
