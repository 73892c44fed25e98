"""A user's own arrays in one ``.npz`` file (``data=npz data.path=<file>``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.config.schema import ConfigError, NonNegativeFloat, PositiveInt, choice
from fusionlab.data.base import ArrayDataModule
from fusionlab.data.preprocessing import Preprocessor

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

    def __init__(
        self,
        path: str,
        modality: choice("auto", "series", "image") = "auto",
        test_size: NonNegativeFloat = 0.2,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 1000,
        val_size: NonNegativeFloat = 0.2,
        split_seed: int = 0,
        preprocessing: Preprocessor | None = None,
        impute: choice("none", "zero", "mean", "linear") = "none",
        seed: int = 0,
        bucket_by_length: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, val_size=val_size,
                         split_seed=split_seed, preprocessing=preprocessing, impute=impute, seed=seed,
                         bucket_by_length=bucket_by_length)
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
            return out
        return self._hold_out(out)

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
        """A stratified ``test_size`` part of ``x`` as the test split."""
        from sklearn.model_selection import train_test_split

        y = np.asarray(arrays["y_train"])
        n, size = len(y), self.test_size
        count = int(round(size * n)) if size < 1 else int(size)
        if not 0 < count < n or (size >= 1 and size != int(size)):
            raise ConfigError("data.test_size", f"must leave examples on both sides of {n} (a fraction in (0, 1) "
                              f"or a whole count), got {size}")
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            raise ConfigError("data.test_size", f"{self.source}: a class has {counts.min()} example(s); a "
                              "stratified test split needs at least 2 per class (or give x_test, y_test)")
        try:
            train, test = train_test_split(np.arange(n), test_size=count, stratify=y, random_state=self.split_seed)
        except ValueError as e:
            raise ConfigError("data.test_size", f"{self.source}: {e}") from None
        train, test = np.sort(train), np.sort(test)
        out = {f"{k}_train": arrays[f"{k}_train"][train] for k in ("x", "y", "mask") if f"{k}_train" in arrays}
        out.update({f"{k}_test": arrays[f"{k}_train"][test] for k in ("x", "y", "mask") if f"{k}_train" in arrays})
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
