"""Export a trained network: ``python export.py ckpt_path=... format=onnx|torchscript|exported_program``.

The exported graph computes the logits of :class:`ExportWrapper`:

- series: ``logits = f(x (B, C, L) float32, mask (B, L) bool)`` (mask True on real steps; all True
  for equal-length data);
- images: ``logits = f(x (B, C, H, W) float32)``;
- text: ``logits = f(ids (B, L) int64)`` (0 is padding; the mask is derived from the ids);
- text with a pretrained sub-word branch (``branch=pretrained_transformer``): ``logits = f(ids (B, L)
  int64, subword_ids (B, T) int64, subword_mask (B, T) bool)``: the encoder's own tokenizer's ids of the
  same texts (``fusionlab.load(ckpt).prepare_subwords(texts)``); the whole encoder is in the graph (its
  frozen layers too: a cache of their outputs is a training-time shortcut).

Inputs are *prepared* inputs (scaled, tokenised): ``fusionlab.load(ckpt).prepare(raw)`` gives them.
Batch and length axes (the word and sub-word lengths independently) are dynamic where the model
allows (``torch.export`` decides per axis with ``Dim.AUTO``; the axes found dynamic are reported).
Each export is checked: the exported model is run (onnxruntime, ``torch.jit.load``,
``torch.export.load``) on real inputs and compared with PyTorch.
A model that an exporter cannot take is refused with one line naming the format and the reason.
"""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from fusionlab.config.schema import ConfigError
from fusionlab.models.subword_routing import net_reads_subwords

log = logging.getLogger("fusionlab")

FORMATS = ("onnx", "torchscript", "exported_program")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2"}
TOLERANCE = 1e-5


class ExportWrapper(nn.Module):
    """The network with fixed positional inputs: ``(x, mask)`` for series (see the module docstring)."""

    input_names: tuple[str, ...] = ("x", "mask")

    def __init__(self, net: nn.Module, modality: str) -> None:
        super().__init__()
        self.net = net
        self.modality = modality

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.net(x, mask)


class InputOnlyWrapper(ExportWrapper):
    """Images and text: the input alone (text derives its mask from the ids, 0 being padding)."""

    @property
    def input_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("ids",) if self.modality == "text" else ("x",)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self.net(x)


class SubwordWrapper(ExportWrapper):
    """Text with a pretrained sub-word branch: the word ids and the encoder's own ids and mask."""

    input_names = ("ids", "subword_ids", "subword_mask")

    def forward(self, ids: Tensor, subword_ids: Tensor, subword_mask: Tensor) -> Tensor:  # type: ignore[override]
        return self.net(ids, None, subword_ids, subword_mask)


def wrap(net: nn.Module, modality: str) -> ExportWrapper:
    """The export wrapper of a network reading ``modality``."""
    if modality == "series":
        return ExportWrapper(net, modality)
    return (SubwordWrapper if net_reads_subwords(net) else InputOnlyWrapper)(net, modality)


def example_inputs(prepared: tuple[Tensor | None, ...], modality: str, rows: int = 4) -> tuple[Tensor, ...]:
    """The first ``rows`` prepared examples as the exporter's example arguments; ``prepared`` is
    ``(x, mask)`` or, with sub-words, ``(ids, mask, subword_ids, subword_mask)``."""
    x, mask, *subwords = prepared
    x = x[:rows]
    if subwords:
        return (x, subwords[0][:rows], subwords[1][:rows])
    if modality != "series":
        return (x,)
    if mask is None:
        mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool)
    return x, mask[:rows]


def stand_in_inputs(spec: Any, rows: int = 4) -> tuple[Tensor, ...]:
    """Example arguments of the right shapes and types (no padding), when no real inputs are given."""
    if spec.modality == "text":
        ids = torch.ones(rows, spec.shape[0], dtype=torch.long)
        if getattr(spec, "subwords", None) is None:
            return (ids,)
        steps = int(spec.subwords[1])  # the sub-word tokenizer's max_length
        return ids, torch.ones(rows, steps, dtype=torch.long), torch.ones(rows, steps, dtype=torch.bool)
    x = torch.zeros(rows, *spec.shape)
    if spec.modality == "image":
        return (x,)
    return x, torch.ones(rows, spec.shape[-1], dtype=torch.bool)


def dynamic_shapes(wrapper: ExportWrapper) -> tuple[dict[int, Any], ...]:
    """``Dim.AUTO`` on the batch and length axes of each input, in order: torch.export keeps dynamic what
    the model allows (the length is the last axis; images have none)."""
    auto = torch.export.Dim.AUTO
    if wrapper.modality == "image":
        return ({0: auto},)
    if wrapper.modality == "series":
        return ({0: auto, 2: auto}, {0: auto, 1: auto})
    return tuple({0: auto, 1: auto} for _ in wrapper.input_names)


def dynamic_axes_of(program: torch.export.ExportedProgram, names: list[str]) -> dict[str, list[int]]:
    """Which axes of each user input came out dynamic (symbolic) in an exported program."""
    out: dict[str, list[int]] = {}
    user = torch.export.graph_signature.InputKind.USER_INPUT
    specs = [s for s in program.graph_signature.input_specs if s.kind == user]
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for name, spec in zip(names, specs):
        node = placeholders.get(spec.arg.name)
        value = node.meta.get("val") if node is not None else None
        if value is None:
            continue
        out[name] = [i for i, d in enumerate(value.shape) if not isinstance(d, int)]
        if getattr(program, "fixed_length", False):
            out[name] = [i for i in out[name] if i == 0]
    return out


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an exporter without its console chatter (progress lines, optimisation-pass logs)."""
    loggers = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    sink = io.StringIO()
    try:
        with redirect_stdout(sink), redirect_stderr(sink):
            return fn(*args, **kwargs)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def shorter(args: tuple[Tensor, ...], modality: str) -> tuple[Tensor, ...]:
    """The example arguments, each cut to 3/4 of its own length (a probe of the dynamic length axes)."""
    if modality == "image":
        return args
    return tuple(a[..., :max(2, a.shape[-1] * 3 // 4)] if a.shape[-1] >= 3 else a for a in args)


def export_program(wrapper: ExportWrapper, args: tuple[Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export`` with dynamic batch and length axes; when the program then refuses a shorter
    input (a guard fixed the length), exported again with the length fixed and the batch dynamic."""
    shapes = dynamic_shapes(wrapper)
    with torch.no_grad():  # an inference graph: no grad-mode switches (a frozen encoder's) in it
        program = torch.export.export(wrapper, args, dynamic_shapes=shapes, strict=False)
        if wrapper.modality == "image":
            return program
        try:
            with torch.inference_mode():
                program.module()(*shorter(args, wrapper.modality))
            return program
        except Exception as e:
            log.info("the length axis cannot stay dynamic (%s); exporting with the length fixed", _reason(e)[:200])
        batch_only = tuple({0: torch.export.Dim.AUTO} for _ in shapes)
        program = torch.export.export(wrapper, args, dynamic_shapes=batch_only, strict=False)
    program.fixed_length = True  # type: ignore[attr-defined]
    return program


def export_model(net: nn.Module, modality: str, fmt: str, path: Path, args: tuple[Tensor, ...],
                 opset: int = 18, program: torch.export.ExportedProgram | None = None) -> dict[str, Any]:
    """Write ``net`` in ``fmt`` to ``path``; returns ``{"format", "path", "inputs", "dynamic_axes",
    "program"}`` (``program``: the ``torch.export`` program, reusable for the other two formats of the
    same network and arguments). Raises ConfigError("format", ...) with one line when the exporter
    cannot take the model."""
    if fmt not in FORMATS:
        raise ConfigError("format", f"must be one of {list(FORMATS)}, got {fmt!r}")
    wrapper = wrap(net, modality).eval()
    names = list(wrapper.input_names)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # torch.export.save wants its .pt2 suffix
    if fmt == "torchscript":
        program = None
    try:
        if fmt == "torchscript":
            dynamic = _torchscript(wrapper, args, tmp)
        else:
            program = program if program is not None else export_program(wrapper, args)
            dynamic = dynamic_axes_of(program, names)
            if fmt == "exported_program":
                torch.export.save(program, str(tmp))
            else:
                onnx_program = _quiet(torch.onnx.export, program, args, input_names=names, output_names=["logits"],
                                      opset_version=opset, dynamo=True, external_data=False)
                onnx_program.save(str(tmp))
    except ConfigError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError("format", f"this model cannot be exported to {fmt}: {_reason(e)}") from None
    tmp.replace(path)
    return {"format": fmt, "path": str(path), "inputs": names, "dynamic_axes": dynamic, "program": program}


def _torchscript(wrapper: ExportWrapper, args: tuple[Tensor, ...], path: Path) -> dict[str, list[int]]:
    """``torch.jit.script`` when the model scripts (every axis dynamic), else ``torch.jit.trace``
    (shapes are traced symbolically; the check on real inputs of other sizes tells if it holds)."""
    try:
        module = _quiet(torch.jit.script, wrapper)
        how = "script"
    except Exception as e:
        log.info("torch.jit.script failed (%s); tracing instead", _reason(e)[:200])
        module = _quiet(torch.jit.trace, wrapper, args, check_trace=False)
        how = "trace"
    module.save(str(path))
    log.info("torchscript by torch.jit.%s", how)
    length_ok = wrapper.modality != "image" and _same(module, wrapper, shorter(args, wrapper.modality))
    return {name: [0, a.dim() - 1] if length_ok and a.dim() > 1 else [0]
            for name, a in zip(wrapper.input_names, args)}


def _same(a: Any, b: nn.Module, args: tuple[Tensor, ...]) -> bool:
    """``a`` runs on ``args`` and gives ``b``'s outputs (within the export tolerance)."""
    try:
        with torch.inference_mode():
            return bool((a(*args) - b(*args)).abs().max() <= TOLERANCE)
    except Exception:
        return False


# -- running an exported file ---------------------------------------------------------------------------
def load_runner(fmt: str, path: str | Path) -> Any:
    """A callable ``run(*inputs) -> np.ndarray logits`` for an exported file."""
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = [i.name for i in session.get_inputs()]

        def run_onnx(*inputs: Tensor) -> np.ndarray:
            return session.run(None, {n: t.numpy() for n, t in zip(feeds, inputs)})[0]

        return run_onnx
    module = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()

    def run_torch(*inputs: Tensor) -> np.ndarray:
        with torch.inference_mode():
            return module(*inputs).numpy()

    return run_torch


def compare(net: nn.Module, modality: str, fmt: str, path: str | Path, prepared: tuple[Tensor | None, ...],
            batch_size: int = 256, dynamic_length: bool = True) -> dict[str, Any]:
    """Max absolute difference between the exported model and PyTorch on prepared real inputs
    (``(x, mask)``, or ``(ids, mask, subword_ids, subword_mask)``), batched (for padded data each batch
    cut to its longest example); with ``dynamic_length`` every batch is also run with each input cut
    to 3/4 of its length (masks marking the rest as padding), so the exported model is seen at several
    batch sizes and lengths."""
    from fusionlab.inference.predictor import input_batches

    run = load_runner(fmt, path)
    wrapper = wrap(net, modality).eval()
    worst, n = 0.0, 0
    for batch in input_batches(prepared, batch_size):
        args = example_inputs(batch, modality, rows=len(batch[0]))
        variants = [args]
        if modality != "image" and dynamic_length and args[0].shape[-1] > 2:  # the same examples, cut shorter
            variants.append(shorter(args, modality))
        for inputs in variants:
            with torch.inference_mode():
                reference = wrapper(*inputs).numpy()
            worst = max(worst, float(np.abs(run(*inputs) - reference).max()))
        n += len(batch[0])
    return {"max_abs_diff": worst, "examples": n, "within_tolerance": worst <= TOLERANCE}


# -- the job ---------------------------------------------------------------------------------------------
def export(cfg: DictConfig) -> dict[str, Any]:
    """Run the export job: write the file, check it on ``check_input`` when given, print one line."""
    from fusionlab.data import read_inputs
    from fusionlab.inference.predictor import load
    from fusionlab.jobs.environment import set_threads

    set_threads(cfg.get("threads"))
    fmt = str(cfg.format)
    model = load(cfg.ckpt_path, extra_allowed=tuple(cfg.get("allowed_targets") or ()))
    modality = model.input_spec.modality
    prepared = None
    if cfg.get("check_input"):
        raw, _ = read_inputs(cfg.check_input, model.state, key="check_input")
        prepared = (*model.prepare(raw), *(model.prepare_subwords(raw) or ()))
    args = example_inputs(prepared, modality) if prepared is not None else stand_in_inputs(model.input_spec)
    out = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / f"model{SUFFIX[fmt]}"
    result = export_model(model.net, modality, fmt, out, args, opset=int(cfg.get("opset", 18)))
    result.pop("program")
    line = f"exported {fmt} → {Path(result['path']).resolve()} (inputs {result['inputs']}, dynamic axes " \
           f"{result['dynamic_axes']})"
    if prepared is not None:
        dynamic = result["dynamic_axes"].get(result["inputs"][0], [])
        check = compare(model.net, modality, fmt, out, prepared, dynamic_length=len(dynamic) > 1)
        result.update(check)
        line += f"; max |exported - PyTorch| = {check['max_abs_diff']:.2e} on {check['examples']} examples"
        if not check["within_tolerance"]:
            out.unlink(missing_ok=True)
            raise ConfigError("format", f"the {fmt} export differs from PyTorch by {check['max_abs_diff']:.2e} "
                              f"(> {TOLERANCE}) on '{cfg.check_input}'; not written")
    print(line)
    return result
