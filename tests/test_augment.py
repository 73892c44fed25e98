"""Batch augmentations: each keeps shape/dtype/device, honours ``p`` per example and has the
property its docstring promises; every YAML option builds its class and touches training batches only."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from fusionlab.augmentations import (
    Compose,
    Identity,
    Jitter,
    MagnitudeWarp,
    Scaling,
    TimeMask,
    TimeShift,
    WindowCrop,
)
from fusionlab.config import ConfigError
from fusionlab.training.run import prepare, validate

FACTORIES = {
    "jitter": lambda p: Jitter(sigma=0.1, p=p),
    "scaling": lambda p: Scaling(sigma=0.2, p=p),
    "magnitude_warp": lambda p: MagnitudeWarp(sigma=0.2, knots=4, p=p),
    "magnitude_warp_linear": lambda p: MagnitudeWarp(sigma=0.2, knots=4, interpolation="linear", p=p),
    "time_shift": lambda p: TimeShift(max_shift=3, p=p),
    "time_mask": lambda p: TimeMask(max_width=0.2, p=p),
    "window_crop": lambda p: WindowCrop(ratio=0.8, p=p),
    "compose": lambda p: Compose([Jitter(sigma=0.1, p=p), Scaling(sigma=0.2, p=p)]),
}
NAMES = sorted(FACTORIES)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def batch(b: int = 8, c: int = 3, length: int = 40, seed: int = 0, dtype: torch.dtype = torch.float32,
          device: str = "cpu") -> torch.Tensor:
    """A seeded batch with no value near zero (so ratios out / x are well defined)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, c, length, generator=g) + 0.5) * torch.where(torch.rand(b, c, length, generator=g) < 0.5, -1, 1)
    return x.to(device=device, dtype=dtype)


def changed(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per example: does any value differ from the input?"""
    return (out != x).flatten(1).any(1)


# -- what every augmentation must do ------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_device_are_kept(name: str, dtype: torch.dtype, device: str) -> None:
    x = batch(dtype=dtype, device=device)
    torch.manual_seed(0)
    for p in (1.0, 0.5):
        out = FACTORIES[name](p)(x)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("name", NAMES)
def test_p0_returns_the_input_exactly_and_p1_changes_every_example(name: str) -> None:
    x = batch(b=64)
    torch.manual_seed(0)
    assert torch.equal(FACTORIES[name](0.0)(x), x)
    torch.manual_seed(0)
    out = FACTORIES[name](1.0)(x)
    assert not torch.equal(out, x)
    if name != "time_shift":  # a shift of 0 steps is one of the allowed draws
        assert changed(out, x).all()


@pytest.mark.parametrize("name", NAMES)
def test_p_half_changes_about_half_the_examples(name: str) -> None:
    x = batch(b=4000, c=2, length=24)
    torch.manual_seed(1)
    half = FACTORIES[name](0.5)(x)
    if name == "compose":  # two independent p=0.5 draws: 3/4 of the examples see at least one
        assert changed(half, x).float().mean().item() == pytest.approx(0.75, abs=0.04)
        return
    torch.manual_seed(1)
    full = FACTORIES[name](1.0)(x)
    # every example is either untouched or exactly what p=1 would have made of it (same seed)
    same_as_x = (half == x).flatten(1).all(1)
    same_as_full = (half == full).flatten(1).all(1)
    assert (same_as_x | same_as_full).all()
    changeable = changed(full, x)
    frac = changed(half, x)[changeable].float().mean().item()
    assert frac == pytest.approx(0.5, abs=0.04)


def test_bad_constructor_values_are_refused() -> None:
    for make in (lambda: Jitter(p=1.5), lambda: Scaling(p=-0.1), lambda: MagnitudeWarp(knots=1),
                 lambda: MagnitudeWarp(interpolation="quadratic"), lambda: TimeShift(max_shift=-1),
                 lambda: TimeMask(max_width=0.0), lambda: WindowCrop(ratio=1.5), lambda: Compose([lambda x: x])):
        with pytest.raises((ValueError, TypeError)):
            make()


# -- the property each one promises ----------------------------------------------------------------------
def test_identity_returns_its_input() -> None:
    x = batch()
    assert Identity()(x) is x


def test_jitter_adds_noise_of_std_sigma() -> None:
    x = batch(b=500)
    torch.manual_seed(0)
    noise = Jitter(sigma=0.3)(x) - x
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.3, rel=0.03)


def test_scaling_multiplies_each_example_channel_by_one_factor_around_1() -> None:
    x = batch(b=4000, c=3, length=16)
    torch.manual_seed(0)
    ratio = Scaling(sigma=0.2)(x) / x
    factor = ratio[..., :1]
    assert torch.allclose(ratio, factor.expand_as(ratio), rtol=1e-5, atol=1e-6)  # constant along time
    assert factor.mean().item() == pytest.approx(1.0, abs=0.01)
    assert factor.std().item() == pytest.approx(0.2, rel=0.05)
    assert factor[:, 0].std().item() > 0 and (factor[:, 0] != factor[:, 1]).all()  # per channel


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_magnitude_warp_multiplies_by_a_smooth_curve_through_the_knots(interpolation: str) -> None:
    length, knots, sigma = 31, 4, 0.2  # knots fall on steps 0, 10, 20, 30
    x = batch(b=2000, c=2, length=length)
    torch.manual_seed(0)
    ratio = MagnitudeWarp(sigma=sigma, knots=knots, interpolation=interpolation)(x) / x
    at_knots = ratio[..., ::10]
    assert at_knots.mean().item() == pytest.approx(1.0, abs=0.01)
    assert at_knots.std().item() == pytest.approx(sigma, rel=0.05)
    assert (ratio.std(-1) > 1e-3).float().mean() > 0.99  # it varies along time ...
    d1, d2 = ratio.diff(dim=-1), ratio.diff(n=2, dim=-1)
    assert d2.abs().mean() < 0.2 * d1.abs().mean()  # ... smoothly (i.i.d. factors would give about 2x)
    # no step steeper than the largest gap between neighbouring knots spread over its 10 steps
    # (cubic convolution overshoots a little: its slope can reach about 1.5x that)
    gap = at_knots.diff(dim=-1).abs().amax(-1) / 10
    assert (d1.abs().amax(-1) <= gap * (1.0 + 1e-4 if interpolation == "linear" else 1.6)).all()
    if interpolation == "linear":  # straight between knots: curvature only at the interior knots
        kinks = torch.zeros(length - 2, dtype=torch.bool)
        kinks[[9, 19]] = True  # d2[i] is centred on step i + 1
        assert d2[..., ~kinks].abs().max() < 1e-5


def test_time_shift_rolls_each_example_by_a_shift_within_bounds() -> None:
    max_shift, length = 3, 20
    x = torch.randn(700, 2, length, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    out = TimeShift(max_shift=max_shift)(x)
    shifts = torch.arange(length)
    matches = torch.stack([(out == x.roll(int(s), dims=-1)).flatten(1).all(1) for s in shifts])  # (L, B)
    assert (matches.sum(0) == 1).all()  # each example is exactly one roll of its input
    found = shifts[matches.int().argmax(0)]
    found = torch.where(found > length // 2, found - length, found)  # back to [-L/2, L/2]
    assert found.abs().max().item() <= max_shift
    counts = torch.bincount(found + max_shift, minlength=2 * max_shift + 1)
    assert len(counts) == 2 * max_shift + 1 and (counts > 700 / 7 * 0.6).all()  # every shift, about uniformly


def test_time_mask_zeroes_one_window_of_at_most_max_width_per_example() -> None:
    length, max_width = 50, 0.2
    widest = int(max_width * length)
    x = batch(b=1000, c=3, length=length)
    torch.manual_seed(0)
    out = TimeMask(max_width=max_width)(x)
    zero = (out == 0).all(1)  # (B, L): steps zeroed in every channel
    differs = (out != x).any(1)
    assert torch.equal(zero, differs)  # the rest is unchanged
    width = zero.sum(1)
    t = torch.arange(length).expand_as(zero)
    first = torch.where(zero, t, length).min(1).values
    last = torch.where(zero, t, -1).max(1).values
    assert (width >= 1).all() and (width <= widest).all()
    assert torch.equal(last - first + 1, width)  # one contiguous window
    assert set(width.tolist()) == set(range(1, widest + 1))  # every width is drawn
    assert first.min().item() == 0 and last.max().item() == length - 1  # windows reach both ends


def test_window_crop_keeps_constants_and_stretches_a_ramp_into_a_ramp() -> None:
    length, ratio = 40, 0.8
    crop = round(ratio * length)
    const = torch.randn(300, 2, 1).expand(300, 2, length).contiguous()
    torch.manual_seed(0)
    assert torch.equal(WindowCrop(ratio=ratio)(const), const)

    slope = torch.rand(300, 2, 1) + 0.5
    ramp = slope * torch.arange(length, dtype=torch.float32) - 3.0
    torch.manual_seed(0)
    out = WindowCrop(ratio=ratio)(ramp)
    assert not torch.equal(out, ramp)
    assert (out.diff(dim=-1) > 0).all()  # still increasing
    assert out.diff(n=2, dim=-1).abs().max() < 1e-4  # still a straight line
    assert (out >= ramp.min(-1, keepdim=True).values - 1e-5).all()  # inside the original range
    assert (out <= ramp.max(-1, keepdim=True).values + 1e-5).all()
    span = out[..., -1] - out[..., 0]
    assert torch.allclose(span, slope[..., 0] * (crop - 1), rtol=1e-5)  # crop - 1 steps, stretched to L - 1
    start = (out[..., 0] + 3.0) / slope[..., 0]  # where each crop began
    assert torch.allclose(start, start.round(), atol=1e-4)
    assert set(start.round().int()[:, 0].tolist()) == set(range(length - crop + 1))
    assert torch.equal(start.round()[:, 0], start.round()[:, 1])  # one crop per example, all channels


def test_window_crop_with_ratio_1_is_the_identity() -> None:
    x = batch()
    assert torch.equal(WindowCrop(ratio=1.0)(x), x)


def test_compose_equals_the_transforms_applied_in_order_under_the_same_seed() -> None:
    x = batch(b=64)
    steps = [Jitter(sigma=0.1, p=0.5), Scaling(sigma=0.2, p=0.7), TimeShift(max_shift=2), TimeMask(max_width=0.1)]
    torch.manual_seed(3)
    out = Compose(steps)(x)
    torch.manual_seed(3)
    ref = x
    for t in steps:
        ref = t(ref)
    assert torch.equal(out, ref) and not torch.equal(out, x)
    torch.manual_seed(3)
    reversed_ = Compose(steps[::-1])(x)
    assert not torch.equal(reversed_, out)  # order matters
    assert torch.equal(Compose([])(x), x)


# -- through the real config ------------------------------------------------------------------------------
OPTIONS = {
    "scaling": Scaling,
    "magnitude_warp": MagnitudeWarp,
    "time_shift": TimeShift,
    "time_mask": TimeMask,
    "window_crop": WindowCrop,
    "compose": Compose,
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_yaml_option_builds_its_class_and_changes_training_batches_only(make_cfg, option: str) -> None:
    cfg = make_cfg([f"augmentation={option}", "debug=fast"])
    validate(cfg)
    dm, module, _ = prepare(cfg)
    assert type(module.augmentation) is OPTIONS[option]
    seen: list[torch.Tensor] = []
    module.net.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    x, y = next(iter(dm.train_dataloader()))
    for stage in ("train", "val", "test"):
        module._step((x, y), stage)
    train_x, val_x, test_x = seen
    assert train_x.shape == x.shape and not torch.equal(train_x, x)
    assert torch.equal(val_x, x) and torch.equal(test_x, x)


def test_compose_yaml_instantiates_its_nested_list() -> None:
    from omegaconf import OmegaConf

    from tests.conftest import CONF

    aug = instantiate(OmegaConf.load(CONF / "augmentation" / "compose.yaml"))
    assert isinstance(aug, Compose) and [type(t) for t in aug.transforms] == [Jitter, Scaling]
    assert aug.transforms[0].sigma == 0.03 and aug.transforms[1].sigma == 0.1


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        (["augmentation=scaling", "augmentation.p=1.5"], "augmentation.p", "must be <= 1.0"),
        (["augmentation=scaling", "augmentation.sigma=-0.1"], "augmentation.sigma", "must be >= 0"),
        (["augmentation=jitter", "augmentation.p=-0.5"], "augmentation.p", "must be >= 0"),
        (["augmentation=magnitude_warp", "augmentation.knots=1"], "augmentation.knots", "must be >= 2"),
        (["augmentation=magnitude_warp", "augmentation.interpolation=quadratic"], "augmentation.interpolation",
         "must be one of"),
        (["augmentation=time_shift", "augmentation.max_shift=-2"], "augmentation.max_shift", "must be >= 0"),
        (["augmentation=time_shift", "augmentation.max_shift=0.5"], "augmentation.max_shift", "Value"),
        (["augmentation=time_mask", "augmentation.max_width=0"], "augmentation.max_width", "must be > 0"),
        (["augmentation=window_crop", "augmentation.ratio=1.2"], "augmentation.ratio", "must be <= 1.0"),
        (["augmentation=compose", "augmentation.transforms.1.sigma=-1"], "augmentation.transforms[1].sigma",
         "must be >= 0"),
        (["augmentation=compose", "augmentation.transforms.0.p=2"], "augmentation.transforms[0].p", "must be <= 1"),
        (["augmentation=scaling", "+augmentation.sigmaa=0.1"], "augmentation.sigmaa", "unknown key for Scaling"),
    ],
)
def test_out_of_range_values_fail_validation_naming_the_key(make_cfg, overrides: list[str], key: str,
                                                            words: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(overrides))
    assert err.value.key == key and words in err.value.message


def test_old_target_paths_still_build_the_same_classes() -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import fusionlab.augmentations as new
    from fusionlab.training import augment, augment_image, augment_text, mixing

    for module in (augment, augment_image, augment_text, mixing):
        for name in module.__all__:
            assert getattr(module, name) is getattr(new, name)
    built = instantiate(OmegaConf.create({"_target_": "fusionlab.training.mixing.Mixup", "alpha": 0.3}))
    assert type(built) is new.Mixup and built.alpha == 0.3
