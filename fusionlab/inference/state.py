"""The data state a checkpoint carries, as prediction reads it.

The data layer owns the format (:func:`fusionlab.data.data_state`, written into every checkpoint as
``fusionlab_data``) and the preparation of new examples (:func:`fusionlab.data.prepare_inputs`). This
module names what a checkpoint lacks when it was written before checkpoints carried their data state.
"""

from __future__ import annotations

from typing import Any

from fusionlab.data import prepare_inputs, state_input_spec

__all__ = ["input_spec", "missing_parts", "prepare_inputs"]

# what a prediction needs from the data state; a checkpoint lacking one is named in the error
REQUIRED = ("input_spec", "classes")


def missing_parts(state: dict[str, Any] | None) -> list[str]:
    """What a checkpoint's data state lacks for prediction (all of it when there is none)."""
    if not state:
        return ["data state (input spec, class names, fitted preprocessing, vocabulary)"]
    out = [k for k in REQUIRED if k not in state]
    spec = state.get("input_spec") or {}
    if spec.get("modality") == "text" and "tokenizer" not in state:
        out.append("tokenizer and vocabulary")
    return out


def input_spec(state: dict[str, Any]) -> Any:
    """The :class:`~fusionlab.data.spec.InputSpec` a data state describes."""
    return state_input_spec(state)
