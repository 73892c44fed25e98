"""What a datamodule tells the model about its inputs."""

from __future__ import annotations

from dataclasses import dataclass, replace

MODALITIES = ("series", "image", "text")


@dataclass(frozen=True)
class InputSpec:
    """The shape and kind of one example, as branches see it.

    - ``series``: float ``(C, L)``; ``image``: float ``(C, H, W)``; ``text``: token ids ``(L,)``
      (0 is padding) with ``vocab_size`` set.
    - ``masked``: batches are ``(x, y, mask)`` with ``mask`` ``(B, L)`` bool, True on real steps
      (unequal-length series, text); otherwise ``(x, y)``.
    """

    modality: str
    shape: tuple[int, ...]
    vocab_size: int | None = None
    masked: bool = False
    tokens: tuple[str, ...] | None = None  # text: index -> token, for pretrained vectors
    # text with data.subwords: (encoder source, sub-word max length, cached frozen layers: k or a tuple of
    # layers); batches then end with the sub-word ids (B, T) or the cached states (B, T, H) / (B, T, m, H)
    # and their mask (B, T)
    subwords: tuple[str, int, int | tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        dims = {"series": 2, "image": 3, "text": 1}[self.modality]
        if len(self.shape) != dims:
            raise ValueError(f"a {self.modality} example has {dims} dimensions, got shape {self.shape}")
        if self.modality == "text" and not self.vocab_size:
            raise ValueError("text inputs need vocab_size")

    @classmethod
    def coerce(cls, spec: object) -> InputSpec:
        """``spec`` as an InputSpec (Hydra's instantiate turns dataclass arguments into configs)."""
        if isinstance(spec, cls):
            return spec
        from omegaconf import OmegaConf

        d = OmegaConf.to_container(spec) if OmegaConf.is_config(spec) else dict(spec)  # type: ignore[arg-type]
        tokens, subwords = d.get("tokens"), d.get("subwords")
        return cls(d["modality"], tuple(d["shape"]), d.get("vocab_size"), bool(d.get("masked")),
                   tuple(tokens) if tokens is not None else None,
                   tuple(tuple(v) if isinstance(v, list) else v for v in subwords) if subwords is not None else None)

    def with_(self, **changes: object) -> InputSpec:
        return replace(self, **changes)

    def describe(self) -> str:
        dims = {"series": "(channels, length)", "image": "(channels, height, width)", "text": "(length,)"}
        return f"{self.modality} {dims[self.modality]}={tuple(self.shape)}"
