"""What a trained model needs from its data, saved in the checkpoint: :func:`data_state`.

``datamodule.data_state()`` returns a dict of plain Python types and tensors only (it loads with
``torch.load(..., weights_only=True)``):

- ``version``; ``source`` (how the data was named);
- ``input_spec``: ``{modality, shape, vocab_size, masked}`` (from the training split);
- ``classes``: the class labels in label order (index ``i`` is class ``classes[i]``), and
  ``class_names`` (the same as strings);
- ``length``: the training length (steps) and ``length_policy`` (``data.too_long``: ``cut`` or
  ``refuse``) for longer series;
- ``impute`` and ``impute_fill`` (the training part's channel means, a tensor, or None);
- ``preprocessing``: the fitted scaling (:func:`~fusionlab.data.preprocessing.preprocessing_state`);
- text: ``tokenizer`` (its settings and ``tokens``, the vocabulary in id order), ``text_column``
  and ``label_column``; with ``data.subwords``, ``subwords``: the pretrained encoder's own tokenizer
  (``source``, ``max_length``, its ``tokenizer_json``; :class:`~fusionlab.branches.pretrained_transformer.
  SubwordTokenizer.from_state`), so new text gets its sub-word ids without the model folder.

:func:`fusionlab.data.prepare_inputs` prepares new raw examples with it exactly as the test split was.
"""

from __future__ import annotations

from typing import Any

import torch

from fusionlab.data.preprocessing import preprocessing_state
from fusionlab.data.spec import InputSpec

STATE_VERSION = 2


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def data_state(dm: Any) -> dict[str, Any]:
    """The data state of a set-up :class:`~fusionlab.data.ArrayDataModule` (see the module docstring)."""
    spec = dm.input_spec
    fill = getattr(dm, "impute_fill", None)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "source": str(dm.source),
        "input_spec": {"modality": spec.modality, "shape": [int(d) for d in spec.shape],
                       "vocab_size": spec.vocab_size, "masked": bool(spec.masked)},
        "classes": [_plain(c) for c in dm.classes],
        "class_names": list(dm.class_names),
        "length": int(spec.shape[-1]),
        "length_policy": getattr(dm, "too_long", "cut"),
        "impute": getattr(dm, "impute", "none"),
        "impute_fill": None if fill is None else torch.as_tensor(fill),
        "preprocessing": preprocessing_state(dm.preprocessing),
    }
    tokenizer = getattr(dm, "tokenizer", None)
    if spec.modality == "text" and tokenizer is not None:
        state["tokenizer"] = {**tokenizer.config(), "tokens": list(tokenizer.tokens)}
        state["text_column"] = getattr(dm, "text_column", "text")
        state["label_column"] = getattr(dm, "label_column", "label")
    if getattr(dm, "subwords", None) is not None:
        state["subwords"] = dm.subwords.state()
    return state


def state_input_spec(state: dict[str, Any]) -> InputSpec:
    """The :class:`InputSpec` a data state describes (with the vocabulary for text)."""
    spec = state["input_spec"]
    tokens = state.get("tokenizer", {}).get("tokens")
    sub = state.get("subwords")  # new text enters as sub-word ids (never cached states): 0 cached layers
    return InputSpec(spec["modality"], tuple(int(d) for d in spec["shape"]), spec.get("vocab_size"),
                     bool(spec.get("masked")), tuple(tokens) if tokens is not None else None,
                     (sub["source"], int(sub["max_length"]), 0) if sub else None)
