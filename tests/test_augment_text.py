"""Token augmentations: they change real tokens only (padding untouched), keep what their docstring
promises, honour the mask they are given, and touch training batches only."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from fusionlab.augmentations import TokenDropout, TokenSwap
from fusionlab.training.run import prepare, validate


def batch(b: int = 64, length: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids >= 2 with random lengths 1..length, zero-padded at the end, and their mask."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    mask = torch.arange(length) < lengths[:, None]
    x = torch.randint(2, 500, (b, length), generator=g).masked_fill(~mask, 0)
    return x, mask


def test_token_dropout_unk_replaces_real_tokens_only() -> None:
    x, mask = batch()
    torch.manual_seed(0)
    out = TokenDropout(rate=0.3)(x, mask)
    changed = out != x
    assert changed.any() and (out[changed] == 1).all()
    assert not changed[~mask].any() and (out[~mask] == 0).all()  # padding untouched
    rate = changed.sum() / mask.sum()
    assert 0.2 < rate < 0.4
    assert torch.equal(TokenDropout(rate=0.0)(x, mask), x)


def test_token_dropout_drop_deletes_tokens_and_closes_the_gap() -> None:
    x, mask = batch()
    torch.manual_seed(0)
    out = TokenDropout(rate=0.5, mode="drop")(x, mask)
    new_mask = out != 0
    assert (new_mask.long().diff(dim=1) <= 0).all()  # still real tokens first, padding after
    assert (new_mask.sum(1) >= 1).all() and (new_mask.sum(1) <= mask.sum(1)).all()
    assert new_mask.sum() < mask.sum()
    for row in range(len(x)):  # the kept tokens are a subsequence of the original, in order
        kept, orig = out[row][new_mask[row]].tolist(), iter(x[row][mask[row]].tolist())
        assert all(t in orig for t in kept)
    everything = TokenDropout(rate=0.999, mode="drop")(x, mask)
    assert ((everything != 0).sum(1) == 1).all()  # never an empty text


def test_token_swap_swaps_neighbours_within_the_text() -> None:
    x, mask = batch()
    torch.manual_seed(0)
    out = TokenSwap(rate=0.3)(x, mask)
    assert not torch.equal(out, x) and torch.equal(out[~mask], x[~mask])
    assert torch.equal(out.sort(dim=1).values, x.sort(dim=1).values)  # same tokens per text
    moved = out != x
    # every changed position holds its left or right neighbour's token
    left = torch.nn.functional.pad(x[:, :-1], (1, 0), value=-1)
    right = torch.nn.functional.pad(x[:, 1:], (0, 1), value=-1)
    assert ((out == left) | (out == right))[moved].all()


@pytest.mark.parametrize("aug", [TokenDropout(rate=0.5), TokenDropout(rate=0.5, mode="drop"), TokenSwap(rate=0.5)])
def test_the_mask_given_is_respected_and_p_is_per_example(aug) -> None:
    x, mask = batch()
    half = mask & (torch.arange(x.shape[1]) < 5)  # the caller's mask: only the first 5 steps are real
    torch.manual_seed(0)
    out = aug(x, half)
    tail = torch.arange(x.shape[1]) >= 5
    if aug.__class__ is TokenDropout and aug.mode == "drop":
        assert (out[:, 5:] == 0).all()  # deleting inside the first 5 steps leaves padding after them
    else:
        assert torch.equal(out[:, tail], x[:, tail])
    aug.p = 0.5
    torch.manual_seed(1)
    changed = (aug(x, mask) != x).any(1)
    assert 0 < changed.sum() < len(x)
    aug.p = 1.0


def test_series_input_is_refused_naming_the_augmentation() -> None:
    from fusionlab.config import ConfigError

    with pytest.raises(ConfigError, match=r"augmentation: TokenSwap works on text .* got torch.float32 \(2, 1, 8\)"):
        TokenSwap()(torch.zeros(2, 1, 8))


OPTIONS = {"token_dropout": TokenDropout, "token_swap": TokenSwap}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_yaml_option_changes_training_batches_only(make_cfg, option: str) -> None:
    cfg = make_cfg(["experiment=text_cnn", f"augmentation={option}", "debug=fast", "data.max_length=48",
                    "augmentation.rate=0.3"])
    validate(cfg)
    assert type(instantiate(cfg.augmentation)) is OPTIONS[option]
    dm, module, _ = prepare(cfg)
    assert type(module.augmentation) is OPTIONS[option]
    seen: list[torch.Tensor] = []
    module.net.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    x, y, mask = next(iter(dm.train_dataloader()))
    for stage in ("train", "val", "test"):
        module._step((x, y, mask), stage)
    train_x, val_x, test_x = seen
    assert train_x.shape == x.shape and not torch.equal(train_x, x)
    assert torch.equal(train_x[~mask], x[~mask])  # padding untouched
    assert torch.equal(val_x, x) and torch.equal(test_x, x)
