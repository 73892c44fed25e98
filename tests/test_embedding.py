"""Token embedding: shapes, padding, pretrained vectors from a text file (coverage, dim check), freezing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from fusionlab.config import ConfigError
from fusionlab.models import TokenEmbedding
from fusionlab.training.run import prepare

TOKENS = ("<pad>", "<unk>", "tea", "good", "Coffee", "zzz")


def write_vectors(path: Path, header: bool = True, dim: int = 4) -> dict[str, list[float]]:
    vectors = {"tea": [0.1, 0.2, 0.3, 0.4][:dim], "good": [-1.0, 0.5, 2.0, 0.0][:dim],
               "coffee": [3.0, -3.0, 1.5, 0.25][:dim], "other": [9.0, 9.0, 9.0, 9.0][:dim]}
    lines = [f"{len(vectors)} {dim}"] if header else []
    lines += [" ".join([w, *map(str, v)]) for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n")
    return vectors


def test_shape_and_padding() -> None:
    emb = TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=8)
    ids = torch.tensor([[2, 3, 0, 0], [5, 1, 4, 0]])
    out = emb(ids)
    assert out.shape == (2, 8, 4)
    assert (out[0, :, 2:] == 0).all() and (out[1, :, 3] == 0).all()
    out.sum().backward()
    assert (emb.embed.weight.grad[0] == 0).all()  # padding gets no gradient


@pytest.mark.parametrize("header", [True, False])
def test_pretrained_vectors_are_loaded_and_coverage_logged(tmp_path: Path, header: bool, caplog) -> None:
    vectors = write_vectors(tmp_path / "vec.txt", header=header)
    with caplog.at_level(logging.INFO, logger="fusionlab"):
        emb = TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=4, pretrained=str(tmp_path / "vec.txt"))
    w = emb.embed.weight.detach()
    assert torch.allclose(w[2], torch.tensor(vectors["tea"]))
    assert torch.allclose(w[3], torch.tensor(vectors["good"]))
    assert torch.allclose(w[4], torch.tensor(vectors["coffee"]))  # 'Coffee' found lowercased
    assert not torch.allclose(w[5], torch.zeros(4)) and (w[0] == 0).all()  # missing word: random; padding 0
    assert emb.coverage == pytest.approx(3 / 4)
    assert "3 of 4 vocabulary tokens found (75.0%)" in caplog.text


def test_pretrained_dim_is_checked_and_missing_file_reported(tmp_path: Path) -> None:
    write_vectors(tmp_path / "vec.txt", dim=3)
    with pytest.raises(ConfigError, match=r"dim: the vectors in '.*vec.txt' have 3 values, but dim is 4"):
        TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=4, pretrained=str(tmp_path / "vec.txt"))
    with pytest.raises(ConfigError, match=r"pretrained: no vector file at"):
        TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=4, pretrained=str(tmp_path / "none.txt"))


def test_freeze_keeps_the_vectors_fixed(tmp_path: Path) -> None:
    write_vectors(tmp_path / "vec.txt")
    emb = TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=4, pretrained=str(tmp_path / "vec.txt"), freeze=True)
    assert not emb.embed.weight.requires_grad
    assert TokenEmbedding(vocab_size=6, tokens=TOKENS, dim=4).embed.weight.requires_grad


def test_embedding_pretrained_option_reaches_the_model(make_cfg, tmp_path: Path) -> None:
    """``embedding=pretrained`` on the review corpus: vocabulary words found in the file start from
    their vectors inside the built FusionNet; the init group leaves them alone."""
    vectors = write_vectors(tmp_path / "vec.txt")
    cfg = make_cfg(["experiment=text_cnn", "embedding=pretrained", f"model.embedding.pretrained={tmp_path}/vec.txt",
                    "model.embedding.dim=4", "model.embedding.freeze=true", "debug=fast", "data.max_length=32"])
    dm, module, _ = prepare(cfg)
    emb = module.net.embedding
    w = emb.embed.weight.detach()
    tea = dm.tokens.index("tea")
    assert torch.allclose(w[tea], torch.tensor(vectors["tea"])) and not emb.embed.weight.requires_grad
    assert emb.coverage == pytest.approx(sum(t in vectors for t in dm.tokens[2:]) / (len(dm.tokens) - 2))
    x, y, mask = next(iter(dm.train_dataloader()))
    assert module.net(x, mask).shape == (x.shape[0], 2)
