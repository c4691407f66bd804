"""The NeSF autoencoder (Supplementary Note 5; layer order Linear -> ReLU -> BatchNorm as the official code).

Encoder: PointNet over atoms (position and species branches, per-atom mix, max pool, lattice parameters appended,
MLP to the latent). Decoder: lattice length and angle heads, a position field and a species field, each an MLP on
(latent, query) with the query re-concatenated at every hidden layer.

Fields take flat queries with the index of their crystal: `field(latent (B, L), queries (Q, 3), crystal_index (Q,))`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nesf.core.config import ModelConfig
from nesf.core.errors import NesfError


def mlp(channels: list[int], *, batch_norm: bool, dropout: float | None = None) -> nn.Sequential:
    """Linear-ReLU-BN(-Dropout) blocks; the last layer is a bare Linear (as the official `MLP`). A given `dropout`
    always adds its layer, even at 0, so that the weights' names do not depend on the probability."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(channels[:-2], channels[1:-1]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm1d(width_out))
        if dropout is not None:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(channels[-2], channels[-1]))
    return nn.Sequential(*layers)


class QueryEncoding(nn.Module):
    """Raw xyz (frequencies=0) or [xyz, sin(2^k pi xyz), cos(2^k pi xyz)] for k < frequencies."""

    def __init__(self, frequencies: int):
        super().__init__()
        self.frequencies = frequencies
        self.register_buffer("scales", (2.0 ** torch.arange(frequencies)) * math.pi, persistent=False)

    @property
    def width(self) -> int:
        return 3 + 6 * self.frequencies

    def forward(self, queries: torch.Tensor) -> torch.Tensor:  # (Q, 3) -> (Q, width)
        if self.frequencies == 0:
            return queries
        scaled = queries[:, :, None] * self.scales  # (Q, 3, F)
        return torch.cat([queries, scaled.sin().flatten(1), scaled.cos().flatten(1)], dim=1)


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_species = config.num_species
        self.position_branch = mlp([3, *config.position_channels], batch_norm=True)
        self.species_branch = mlp([config.num_species, *config.species_channels], batch_norm=True)
        mix_in = config.position_channels[-1] + config.species_channels[-1]
        self.mix = mlp([mix_in, *config.mix_channels], batch_norm=True, dropout=config.dropout)
        self.head = mlp([config.mix_channels[-1] + 6, *config.latent_channels, config.latent_size],
                        batch_norm=True, dropout=config.dropout)

    def forward(self, positions, species_index, crystal_index, lattice_params) -> torch.Tensor:
        """positions (A, 3) Angstrom, species_index (A,), crystal_index (A,), lattice_params (B, 6) -> latent (B, L)."""
        one_hot = nn.functional.one_hot(species_index, self.num_species).to(positions.dtype)
        per_atom = self.mix(torch.cat([self.position_branch(positions), self.species_branch(one_hot)], dim=1))
        batch_size = lattice_params.shape[0]
        pooled = per_atom.new_full((batch_size, per_atom.shape[1]), float("-inf"))
        pooled = pooled.scatter_reduce(0, crystal_index[:, None].expand_as(per_atom), per_atom, reduce="amax")
        pooled = torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)  # crystals with no atoms
        return self.head(torch.cat([pooled, lattice_params.to(pooled.dtype)], dim=1))


class ImplicitField(nn.Module):
    """MLP on (latent, query) with the encoded query concatenated before every hidden layer.

    The first layer's weight is split into a latent part and a query part, so the latent term is computed once
    per crystal and gathered per query (the same arithmetic as the concatenation, with far fewer operations).
    """

    def __init__(self, latent_size: int, channels: tuple, out_channels: int, encoding: QueryEncoding):
        super().__init__()
        self.encoding = encoding
        widths = [latent_size, *channels]
        self.hidden = nn.ModuleList(nn.Linear(w_in + encoding.width, w_out) for w_in, w_out in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in channels)
        self.out = nn.Linear(channels[-1], out_channels)
        self.latent_size = latent_size

    def forward(self, latent: torch.Tensor, queries: torch.Tensor, crystal_index: torch.Tensor) -> torch.Tensor:
        encoded = self.encoding(queries.to(latent.dtype))  # (Q, E)
        first = self.hidden[0]
        latent_part = latent @ first.weight[:, : self.latent_size].T  # (B, H)
        x = latent_part[crystal_index] + encoded @ first.weight[:, self.latent_size:].T + first.bias  # (Q, H)
        x = self.norms[0](torch.relu(x))
        for layer, norm in zip(self.hidden[1:], self.norms[1:]):
            x = norm(torch.relu(layer(torch.cat([x, encoded], dim=1))))
        return self.out(x)


class NeSF(nn.Module):
    """Encoder plus the four decoders. Angles are predicted in radians (the official target); lengths in Angstrom."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.length_head = mlp([config.latent_size, config.lattice_hidden, 3], batch_norm=False)
        self.angle_head = mlp([config.latent_size, config.lattice_hidden, 3], batch_norm=False)
        encoding = QueryEncoding(config.positional_encoding_frequencies)
        self.position_field = ImplicitField(config.latent_size, config.position_field_channels, 3, encoding)
        self.species_field = ImplicitField(config.latent_size, config.species_field_channels, config.num_species,
                                           encoding)
        # Auxiliary head (a flag; not in the paper): element-fraction logits from the latent, so the encoder is told
        # directly what the crystal is made of. Decoding does not use it.
        self.composition_head = nn.Linear(config.latent_size, config.num_species) if config.composition_head else None

    def forward(self, batch, queries, latent_noise: float = 0.0, generator: torch.Generator | None = None):
        return forward_training(self, batch, queries, latent_noise=latent_noise, generator=generator)

    def encode(self, batch) -> torch.Tensor:
        """CrystalBatch -> latent (B, L)."""
        positions, species_index, crystal_index = batch.flat_atoms()
        return self.encoder(positions, species_index, crystal_index, batch.lattice_params)

    def lattice(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent (B, L) -> lengths (B, 3) Angstrom, angles (B, 3) radians."""
        return self.length_head(latent), self.angle_head(latent)


FIELDS = ("position_field", "species_field")


def widen_query_encoding(state_dict: dict, source: ModelConfig, frequencies: int) -> dict:
    """Weights of a raw-xyz model (`source.positional_encoding_frequencies == 0`) for the same model with a sin/cos
    query encoding of `frequencies`, computing the same function: every field layer that reads the query keeps its
    xyz columns (the encoding's first three entries are xyz itself) and gets zero columns for the new sin/cos
    entries, which training then learns. A fine-tune can so add the encoding to trained weights without starting
    over."""
    if source.positional_encoding_frequencies != 0:
        raise NesfError(f"only a raw-xyz model can be widened to a query encoding; this one already encodes with "
                        f"{source.positional_encoding_frequencies} frequencies")
    if frequencies < 1:
        raise NesfError(f"a query encoding needs at least one frequency, got {frequencies}")
    added = QueryEncoding(frequencies).width - 3
    widened = dict(state_dict)
    for field in FIELDS:
        for key in [k for k in state_dict if k.startswith(f"{field}.hidden.") and k.endswith(".weight")]:
            weight = state_dict[key]  # (out, in + 3): the query's xyz are the last three columns
            widened[key] = torch.cat([weight, weight.new_zeros((weight.shape[0], added))], dim=1)
    return widened


def widen_field_channels(state_dict: dict, source: ModelConfig, fresh_state_dict: dict, target: ModelConfig) -> dict:
    """Weights of a `source` model for the same model with wider field MLPs (`target`: same depth, every hidden width
    at least the source's), computing the same function. Each layer keeps its trained block; the new units take
    their incoming weights from `fresh_state_dict` (the target model's own initialisation) and start with zero
    outgoing weights, so they change nothing until training gives them a say. A fine-tune can so test more field
    capacity without training from scratch."""
    widened = dict(state_dict)
    for field in FIELDS:
        old, new = getattr(source, f"{field}_channels"), getattr(target, f"{field}_channels")
        if len(old) != len(new) or any(n < o for o, n in zip(old, new)):
            raise NesfError(f"{field} can only be widened at equal depth, each layer no narrower: {tuple(old)} -> "
                            f"{tuple(new)}")
        if old == new:
            continue
        inputs_old, inputs_new = (source.latent_size, *old), (target.latent_size, *new)
        for i, (width_old, reads_old, reads_new) in enumerate(zip(old, inputs_old, inputs_new)):
            prefix = f"{field}.hidden.{i}."
            weight = fresh_state_dict[prefix + "weight"].clone()  # (out, reads + query width)
            trained = state_dict[prefix + "weight"]
            weight[:width_old, :reads_old] = trained[:, :reads_old]
            weight[:width_old, reads_old:reads_new] = 0.0  # the trained units do not hear the new ones
            weight[:width_old, reads_new:] = trained[:, reads_old:]  # the query columns come last
            widened[prefix + "weight"] = weight
            widened[prefix + "bias"] = _keep_head(fresh_state_dict[prefix + "bias"], state_dict[prefix + "bias"])
            for name in ("weight", "bias", "running_mean", "running_var"):
                key = f"{field}.norms.{i}.{name}"
                widened[key] = _keep_head(fresh_state_dict[key], state_dict[key])
        out = state_dict[f"{field}.out.weight"]
        widened[f"{field}.out.weight"] = torch.cat([out, out.new_zeros((out.shape[0], new[-1] - old[-1]))], dim=1)
    return widened


def _keep_head(fresh: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    kept = fresh.clone()
    kept[: trained.shape[0]] = trained
    return kept


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def noisy_latent(latent: torch.Tensor, share: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """`latent` (B, L) plus Gaussian noise whose std is `share` x the batch's std of each latent dimension. The std is
    detached and relative, so the noise-to-signal ratio holds whatever scale the encoder gives its latents."""
    if share == 0 or latent.shape[0] < 2:
        return latent
    spread = latent.detach().float().std(dim=0, keepdim=True).to(latent.dtype)  # (1, L)
    noise = torch.randn(latent.shape, generator=generator, device=latent.device, dtype=latent.dtype)
    return latent + share * spread * noise


def forward_training(model: NeSF, batch, queries, *, latent_noise: float = 0.0,
                     generator: torch.Generator | None = None):
    """Everything one training step needs, in one call (so DistributedDataParallel sees a single forward).

    `latent_noise` > 0 decodes noisy latents (`noisy_latent`, drawn from `generator`): a regulariser that asks the
    decoders to give nearby latents nearby crystals. Returns lengths (B, 3), angles (B, 3) radians, position
    predictions (Qp, 3), species logits (Qs, K), and the composition head's element-fraction logits (B, K), or None
    without the head.
    """
    latent = noisy_latent(model.encode(batch), latent_noise, generator)
    lengths, angles = model.lattice(latent)
    position = model.position_field(latent, queries.position_queries, queries.position_crystal)
    species = model.species_field(latent, queries.species_queries, queries.species_crystal)
    composition = model.composition_head(latent) if model.composition_head is not None else None
    return lengths, angles, position, species, composition
