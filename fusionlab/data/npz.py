"""A user's own arrays in one ``.npz`` file (``data=npz data.path=<file>``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, NonNegativeFloat, choice
from fusionlab.data.base import ArrayDataModule
from fusionlab.data.checks import check_row_counts
from fusionlab.data.splits import carve_test

EXPECTED = "x, y (required); x_test, y_test (a fixed test split); mask, mask_test (padded series)"


class NPZDataModule(ArrayDataModule):
    """Arrays saved with ``np.savez(path, x=..., y=...)``:

    - ``x``: ``(N, L)`` (a univariate series), ``(N, C, L)`` (series), ``(N, C, H, W)`` (images);
      ``modality`` overrides the guess (``image`` also takes ``(N, H, W)`` as one channel).
    - ``y``: ``(N,)`` labels of any kind (strings, any integers).
    - ``x_test``, ``y_test``: a fixed test split; without them a stratified ``test_size`` part of
      ``x`` is held out (seeded by ``split_seed``).
    - ``mask``, ``mask_test``: ``(N, L)`` bool, True on real steps, for zero-padded series of
      unequal length (batches then carry the mask).

    Object (pickled) arrays are refused: the file is opened with ``allow_pickle=False``.
    """

    defaults = {"batch_size": 64, "val_size": 0.2}

    def __init__(self, path: str, modality: choice("auto", "series", "image") = "auto",
                 test_size: NonNegativeFloat = 0.2, **options: Any) -> None:
        super().__init__(**options)
        self.path = _absolute(path)
        self.requested_modality = modality
        self.test_size = test_size

    @property
    def source(self) -> str:
        return f"file '{self.path}'"

    def load_arrays(self) -> dict[str, Any]:
        if not self.path.is_file():
            raise ConfigError("data.path", f"no file '{self.path}'; expected an .npz with arrays {EXPECTED}")
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except ValueError as e:
            raise ConfigError("data.path", f"'{self.path}' holds object (pickled) arrays, which are not loaded "
                              f"({e}); save plain numeric/string arrays: {EXPECTED}") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise ConfigError("data.path", f"'{self.path}' is not a readable .npz file ({type(e).__name__}); "
                              f"expected arrays {EXPECTED}") from None
        for key in ("x", "y"):
            if key not in arrays:
                raise ConfigError("data.path", f"'{self.path}' has no array '{key}' (it has {sorted(arrays)}); "
                                  f"expected {EXPECTED}")
        if ("x_test" in arrays) != ("y_test" in arrays):
            raise ConfigError("data.path", f"'{self.path}' has only one of x_test and y_test; expected both "
                              "(a fixed test split) or neither (a test_size part of x is held out)")
        where = f"'{self.path}'"
        check_row_counts(arrays, {"x": "x", "y": "y", "mask": "mask"}, where, "data.path")
        check_row_counts(arrays, {"x_test": "x_test", "y_test": "y_test", "mask_test": "mask_test"}, where, "data.path")
        self.modality = self._modality(arrays["x"])
        for key in ("x", "x_test"):
            if key in arrays and self.modality == "image" and arrays[key].ndim == 3:
                arrays[key] = arrays[key][:, None]  # (N, H, W): one channel
        out = {"x_train": arrays["x"], "y_train": arrays["y"]}
        if "mask" in arrays:
            out["mask_train"] = arrays["mask"]
        if "x_test" in arrays:
            out.update(x_test=arrays["x_test"], y_test=arrays["y_test"])
            if "mask_test" in arrays:
                out["mask_test"] = arrays["mask_test"]
            out["names"] = {"train": "x", "test": "x_test"}
            return out
        return {**self._hold_out(out), "names": {"train": "x", "test": "x"}}

    def _modality(self, x: np.ndarray) -> str:
        if x.dtype.kind not in "biuf":
            raise ConfigError("data.path", f"'{self.path}': x has dtype {x.dtype}, expected numbers")
        guess = {2: "series", 3: "series", 4: "image"}.get(x.ndim)
        fits = {"series": (2, 3), "image": (3, 4)}
        modality = guess if self.requested_modality == "auto" else self.requested_modality
        if modality is None or x.ndim not in fits[modality]:
            raise ConfigError("data.path", f"'{self.path}': x has shape {x.shape}; expected (N, L) or (N, C, L) "
                              "for series, (N, C, H, W) or (N, H, W) with data.modality=image for images")
        return modality

    def _hold_out(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A stratified ``test_size`` part of ``x`` as the test split; ``rows_*`` keep each example's
        row in the file, so errors name it."""
        train, test = carve_test(np.asarray(arrays["y_train"]), self.test_size, self.split_seed, "data.test_size",
                                 self.source, label_key="data.path")
        out = {f"{k}_train": arrays[f"{k}_train"][train] for k in ("x", "y", "mask") if f"{k}_train" in arrays}
        out.update({f"{k}_test": arrays[f"{k}_train"][test] for k in ("x", "y", "mask") if f"{k}_train" in arrays})
        out.update(rows_train=train, rows_test=test)
        return out

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), **super().describe()}


def _absolute(path: str) -> Path:
    """``path`` against the directory the command was started in (also inside a Hydra job)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    try:
        from hydra.utils import to_absolute_path

        return Path(to_absolute_path(str(p)))
    except ValueError:  # outside a Hydra job
        return p.resolve()
