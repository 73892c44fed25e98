"""No host sync per training step: every model preset trains under a detector of host reads.

On a GPU a step that calls ``.item()``, ``.cpu()``, ``.tolist()``, ``torch.bincount`` (its CUDA
kernel reads the input's maximum back to size the output), converts a tensor to a Python
number or bool, or builds a tensor on the host waits for the device to finish. The CPU test runs real
training steps through Lightning under a ``TorchFunctionMode`` that records these calls when they
come from code other than torch and Lightning themselves (fusionlab, torchmetrics, the test's own
code), from the first callback's ``on_train_batch_start`` to the module's ``on_train_batch_end``
(after every callback's). Where CUDA exists, a training epoch also runs under
``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.overrides import TorchFunctionMode

from fusionlab.training.metrics import ConfusionMetrics
from fusionlab.training.run import prepare
from tests.conftest import CONF

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
DATA_FOR = {"cnn2d": "digits", "cnn2d_rnn": "digits", "text_cnn": "text"}  # default: mnist1d (series)

# Tensor methods and torch functions that read device memory back to the host
HOST_READS = {"item", "cpu", "tolist", "numpy", "bincount", "nonzero", "unique", "masked_select",
              "__bool__", "__int__", "__float__", "__index__"}
# factories that build a tensor on the host: no device, or a device typed as "cpu" (on this CPU-only
# test every device is the CPU, so a device taken from a tensor, ``x.device``, is what a GPU run gets)
FACTORIES = {"tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange", "linspace",
             "rand", "randn", "randint", "randperm", "eye"}
TORCH_DIR = str(Path(torch.__file__).parent)
STDLIB_DIR = sysconfig.get_paths()["stdlib"]
LIBRARY_DIRS = (str(Path(pl.__file__).parent), str(Path(pl.__file__).parent.parent / "lightning_fabric"))
THIS_FILE = __file__


class HostSyncDetector(TorchFunctionMode):
    """Records ``(call, file, line)`` for each host read or host tensor built outside torch/Lightning.

    The caller is the first frame outside torch and the standard library (a call inside
    ``F.cross_entropy`` counts for the code that called it). Calls whose caller is Lightning's own
    machinery (e.g. the optimizer closure reading Adam's step counter, which lives on the CPU by
    design) are not ours to fix and are left out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        device = kwargs.get("device")  # a torch.device comes from a tensor (x.device); a string is typed
        host_factory = name in FACTORIES and (device is None or isinstance(device, str) and device.startswith("cpu"))
        if name in HOST_READS or host_factory:
            frame = sys._getframe(1)
            while frame is not None and (frame.f_code.co_filename.startswith((TORCH_DIR, STDLIB_DIR))
                                         or frame.f_code.co_filename == THIS_FILE and
                                         frame.f_code.co_name == "__torch_function__"):
                frame = frame.f_back
            where = frame.f_code.co_filename if frame is not None else "?"
            if not where.startswith(LIBRARY_DIRS):
                self.calls.append((name, where, frame.f_lineno if frame is not None else 0))
        return func(*args, **kwargs)


class _Enter(pl.Callback):
    def __init__(self, detector: HostSyncDetector) -> None:
        self.detector = detector

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.detector.__enter__()


def host_syncs_while_training(dm: Any, module: pl.LightningModule, trainer: pl.Trainer) -> list[tuple[str, str, int]]:
    """Fit with the detector on from the first ``on_train_batch_start`` hook to the last
    ``on_train_batch_end`` hook of every step; the recorded calls."""
    detector = HostSyncDetector()
    trainer.callbacks.insert(0, _Enter(detector))  # the first callback of each step
    steps = []

    def leave(*args: Any) -> None:  # the module's hook runs after every callback's
        detector.__exit__(None, None, None)
        steps.append(1)

    module.on_train_batch_end = leave  # type: ignore[method-assign]
    trainer.fit(module, datamodule=dm)
    assert len(steps) == trainer.global_step > 0  # the detector really watched every step
    return detector.calls


def _cfg(make_cfg, model: str, *extra: str):
    data = DATA_FOR.get(model)
    # two training steps; no validation and no checkpoint callbacks (their hooks run at epoch ends)
    return make_cfg([f"model={model}", *([f"data={data}"] if data else []), "debug=limit", "logger=none",
                     "callbacks=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                     "trainer.limit_val_batches=0", *extra])


@pytest.mark.parametrize("model", MODELS)
def test_training_steps_of_every_preset_read_nothing_back_to_the_host(make_cfg, model: str) -> None:
    calls = host_syncs_while_training(*prepare(_cfg(make_cfg, model)))
    assert calls == [], f"host reads during a training step: {sorted(set(calls))}"


def test_padded_batches_with_a_recurrent_branch_read_nothing_back_to_the_host(make_cfg) -> None:
    """Text batches are padded (mask on): the RNN branch must pack without moving lengths to the host."""
    calls = host_syncs_while_training(*prepare(_cfg(make_cfg, "cnn_rnn", "data=text")))
    assert calls == [], f"host reads during a training step: {sorted(set(calls))}"


# -- the detector catches what it must --------------------------------------------------------------
class BincountConfusion(ConfusionMetrics):
    """The confusion counts as they were before: ``torch.bincount`` (a host read on CUDA)."""

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        index = target * self.num_classes + logits.argmax(dim=-1)
        self.counts += torch.bincount(index, minlength=self.num_classes**2)


class HostTensorGuard(pl.Callback):
    """The divergence guard's step as it was before: a CPU tensor copied to the device every step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"]
        where = torch.tensor([trainer.global_step, trainer.current_epoch], device="cpu").to(loss.device)
        torch.where(~torch.isfinite(loss.detach()).all(), where, where)


class ReadsTheLoss(pl.Callback):
    """A per-step ``.item()``, ``.cpu()``, ``.tolist()`` and ``if tensor:``."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"]
        loss.item()
        loss.detach().cpu()
        loss.detach().reshape(1).tolist()
        if loss > 0:
            pass


@pytest.mark.parametrize(
    ("inject", "expected"),
    [("bincount", {"bincount"}), ("host_tensor", {"tensor"}), ("reads", {"item", "cpu", "tolist", "__bool__"})],
)
def test_the_detector_catches_each_kind_of_host_read(make_cfg, inject: str, expected: set[str]) -> None:
    dm, module, trainer = prepare(_cfg(make_cfg, "cnn"))
    if inject == "bincount":
        module.metrics["train_"]["confusion"] = BincountConfusion(module.num_classes)
    elif inject == "host_tensor":
        trainer.callbacks.append(HostTensorGuard())
    else:
        trainer.callbacks.append(ReadsTheLoss())
    calls = host_syncs_while_training(dm, module, trainer)
    assert {name for name, _, _ in calls} == expected
    assert all(where == __file__ for _, where, _ in calls)  # attributed to the code that made them


# -- on a GPU: CUDA's own sync detector ---------------------------------------------------------------
class _CudaSyncErrors(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("error")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", MODELS)
def test_a_training_epoch_on_cuda_never_synchronises(make_cfg, model: str) -> None:
    dm, module, trainer = prepare(_cfg(make_cfg, model, "trainer=gpu", "trainer.limit_train_batches=5"))
    trainer.callbacks.insert(0, _CudaSyncErrors())
    steps = []

    def leave(*args: Any) -> None:
        torch.cuda.set_sync_debug_mode(0)
        steps.append(1)

    module.on_train_batch_end = leave  # type: ignore[method-assign]
    try:
        trainer.fit(module, datamodule=dm)  # a synchronising call inside a step raises RuntimeError
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(steps) == trainer.global_step == 5
