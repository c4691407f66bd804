"""The NeSF network: parameter count of the paper's model, field arithmetic, encoder symmetries."""

import numpy as np
import pytest
import torch

from nesf.core.config import LossWeights, ModelConfig, SamplingConfig
from nesf.core.errors import NesfError
from nesf.model.batch import CrystalTensors
from nesf.model.network import (NeSF, QueryEncoding, count_parameters, noisy_latent, widen_field_channels,
                                widen_query_encoding)
from nesf.model.sampling import QuerySampler
from nesf.training.trainer import compute_loss
from tests.helpers import cscl, hexagonal_zno, rocksalt_mgo

VOCAB = [8, 12, 17, 30, 55]


def test_parameter_count_matches_paper_architecture():
    # Supplementary Note 5 with the paper's LCS6A vocabulary of 80 species: about 0.76 M parameters.
    model = NeSF(ModelConfig(num_species=80))
    assert count_parameters(model) == 765_465
    assert 0.75e6 < count_parameters(model) < 0.78e6


def test_layer_widths_follow_supplementary_note_5():
    model = NeSF(ModelConfig(num_species=80))
    linear = lambda seq: [m for m in seq if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert [(l.in_features, l.out_features) for l in linear(model.encoder.position_branch)] == [(3, 64), (64, 128), (128, 128)]
    assert [(l.in_features, l.out_features) for l in linear(model.encoder.species_branch)] == [(80, 128), (128, 128)]
    assert [(l.in_features, l.out_features) for l in linear(model.encoder.mix)] == [(256, 512)]
    assert [(l.in_features, l.out_features) for l in linear(model.encoder.head)] == [(518, 256), (256, 256), (256, 192)]
    position = [(l.in_features, l.out_features) for l in model.position_field.hidden] + [
        (model.position_field.out.in_features, model.position_field.out.out_features)]
    assert position == [(195, 256), (259, 128)] + [(131, 128)] * 6 + [(128, 3)]  # 9 fully connected layers
    species = [(l.in_features, l.out_features) for l in model.species_field.hidden] + [
        (model.species_field.out.in_features, model.species_field.out.out_features)]
    assert species == [(195, 256), (259, 128), (128, 80)]  # 3 fully connected layers


def test_positional_encoding_widens_every_query_input():
    encoding = QueryEncoding(10)
    queries = torch.tensor([[0.25, -1.0, 2.0]])
    encoded = encoding(queries)
    assert encoded.shape == (1, 63)
    assert torch.allclose(encoded[0, :3], queries[0])
    assert torch.allclose(encoded[0, 3], torch.sin(torch.tensor(0.25 * torch.pi)))
    model = NeSF(ModelConfig(num_species=5, positional_encoding_frequencies=10))
    assert model.position_field.hidden[0].in_features == 192 + 63


def _with_batchnorm_statistics(model: NeSF) -> NeSF:
    """Non-trivial BatchNorm running statistics and affine terms, so eval mode uses every kept entry."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_widening_a_raw_xyz_model_to_a_query_encoding_keeps_its_function():
    torch.manual_seed(0)
    raw_config = ModelConfig(num_species=5)
    raw = _with_batchnorm_statistics(NeSF(raw_config))
    encoded = NeSF(ModelConfig(num_species=5, positional_encoding_frequencies=4))
    encoded.load_state_dict(widen_query_encoding(raw.state_dict(), raw_config, 4))
    encoded.eval()
    latent, queries = torch.randn(3, 192), 4 * torch.randn(50, 3)
    crystal = torch.randint(0, 3, (50,))
    for name in ("position_field", "species_field"):
        expected = getattr(raw, name)(latent, queries, crystal)
        torch.testing.assert_close(getattr(encoded, name)(latent, queries, crystal), expected)
    # the new sin/cos columns are zero, so they start with no effect but a gradient
    first = encoded.position_field.hidden[0].weight
    assert first.shape[1] == 192 + 27 and torch.all(first[:, 192 + 3:] == 0)
    with pytest.raises(NesfError, match="already encodes with 4 frequencies"):
        widen_query_encoding(encoded.state_dict(), encoded.config, 10)
    with pytest.raises(NesfError, match="at least one frequency"):
        widen_query_encoding(raw.state_dict(), raw_config, 0)


def test_widening_the_field_mlps_keeps_their_function_and_trains_the_new_units():
    torch.manual_seed(0)
    narrow_config = ModelConfig(num_species=5)
    narrow = _with_batchnorm_statistics(NeSF(narrow_config))
    wide_config = ModelConfig(num_species=5, position_field_channels=(320, 192, 128, 160, 128, 128, 128, 200),
                              species_field_channels=(256, 144))
    wide = NeSF(wide_config)
    wide.load_state_dict(widen_field_channels(narrow.state_dict(), narrow_config, wide.state_dict(), wide_config))
    wide.eval()
    latent, queries = torch.randn(3, 192), 4 * torch.randn(50, 3)
    crystal = torch.randint(0, 3, (50,))
    for name in ("position_field", "species_field"):
        torch.testing.assert_close(getattr(wide, name)(latent, queries, crystal),
                                   getattr(narrow, name)(latent, queries, crystal))
    # in training mode too (batch statistics): the new units' outgoing weights are zero, so they change nothing ...
    narrow.train(), wide.train()
    torch.testing.assert_close(wide.position_field(latent, queries, crystal),
                               narrow.position_field(latent, queries, crystal))
    # ... but those weights get a gradient, so training can use them
    wide.position_field(latent, queries, crystal).square().sum().backward()
    out = wide.position_field.out.weight
    assert torch.all(out[:, 128:] == 0) and out.grad[:, 128:].abs().sum() > 0
    second = wide.position_field.hidden[1].weight  # (192, 320 + 3): trained units do not read the new ones
    assert torch.all(second[:128, 256:320] == 0) and not torch.all(second[128:, :] == 0)
    with pytest.raises(NesfError, match=r"position_field can only be widened at equal depth, each layer no narrower: "
                                        r"\(320, 192, 128, 160, 128, 128, 128, 200\) -> \(256, 128, 128, 128, 128, 128, "
                                        r"128, 128\)"):
        widen_field_channels(wide.state_dict(), wide_config, narrow.state_dict(), narrow_config)
    with pytest.raises(NesfError, match=r"species_field can only be widened at equal depth"):
        deeper = ModelConfig(num_species=5, species_field_channels=(256, 128, 128))
        widen_field_channels(narrow.state_dict(), narrow_config, NeSF(deeper).state_dict(), deeper)


def test_split_first_layer_equals_concatenation():
    """The field's first layer computes W [z; q] + b with W split in two; compare with the plain concatenation."""
    torch.manual_seed(0)
    model = NeSF(ModelConfig(num_species=5)).eval()
    field = model.position_field
    latent = torch.randn(3, 192)
    queries = torch.randn(7, 3)
    crystal = torch.tensor([0, 0, 1, 2, 2, 2, 1])
    first = field.hidden[0]
    x = torch.relu(first(torch.cat([latent[crystal], queries], dim=1)))
    x = field.norms[0](x)
    for layer, norm in zip(field.hidden[1:], field.norms[1:]):
        x = norm(torch.relu(layer(torch.cat([x, queries], dim=1))))
    expected = field.out(x)
    assert torch.allclose(field(latent, queries, crystal), expected, atol=1e-5)


def test_encoder_ignores_atom_order_and_batch_companions():
    torch.manual_seed(0)
    model = NeSF(ModelConfig(num_species=len(VOCAB))).eval()
    crystals = [rocksalt_mgo(), cscl(), hexagonal_zno()]
    with torch.no_grad():
        together = model.encode(CrystalTensors(crystals, VOCAB).batch())
        alone = model.encode(CrystalTensors([crystals[0]], VOCAB).batch())
        order = np.random.default_rng(1).permutation(crystals[0].num_atoms)
        shuffled = type(crystals[0])(crystals[0].lattice, crystals[0].cart_coords[order], crystals[0].species[order])
        permuted = model.encode(CrystalTensors([shuffled], VOCAB).batch())
    assert torch.allclose(together[0], alone[0], atol=1e-5)
    assert torch.allclose(alone, permuted, atol=1e-5)


def test_model_follows_its_device():
    model = NeSF(ModelConfig(num_species=len(VOCAB))).eval()
    tensors = CrystalTensors([cscl()], VOCAB, "cpu")
    assert model.encode(tensors.batch()).device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_runs_on_cuda():
    model = NeSF(ModelConfig(num_species=len(VOCAB))).cuda().eval()
    tensors = CrystalTensors([cscl(), rocksalt_mgo()], VOCAB, "cuda")
    assert model.encode(tensors.batch()).device.type == "cuda"


def test_composition_head_predicts_element_fractions_and_is_off_by_default():
    assert NeSF(ModelConfig()).composition_head is None
    model = NeSF(ModelConfig(num_species=len(VOCAB), composition_head=True)).eval()
    batch = CrystalTensors([rocksalt_mgo(), cscl()], VOCAB).batch()
    queries = QuerySampler(np.zeros(3), np.full(3, 4.0), SamplingConfig(), torch.device("cpu")).sample(batch)
    *_, composition = model(batch, queries)
    assert composition.shape == (2, len(VOCAB))
    fractions = batch.element_fractions(len(VOCAB))
    expected = torch.zeros(2, len(VOCAB))
    expected[0, VOCAB.index(8)] = expected[0, VOCAB.index(12)] = 0.5
    expected[1, VOCAB.index(17)] = expected[1, VOCAB.index(55)] = 0.5
    assert torch.allclose(fractions, expected)
    with torch.no_grad():
        _, parts = compute_loss(model(batch, queries), batch, queries, LossWeights(composition=2.0))
        reference = -(expected * torch.log_softmax(composition, 1)).sum(1).mean() * 2.0
    assert parts["composition"] == pytest.approx(float(reference), rel=1e-5)


def test_latent_noise_is_a_share_of_each_dimensions_spread_and_keeps_the_gradient():
    generator = torch.Generator().manual_seed(0)
    spread = torch.linspace(0.01, 100.0, 16)  # dimensions on very different scales
    latent = (torch.randn(20000, 16, generator=generator) * spread).requires_grad_()
    noisy = noisy_latent(latent, 0.2, generator)
    ratio = (noisy - latent).detach().std(dim=0) / latent.detach().std(dim=0)
    torch.testing.assert_close(ratio, torch.full((16,), 0.2), atol=0.01, rtol=0)
    noisy.sum().backward()  # the noise's scale is detached: the latent's gradient is that of the identity
    torch.testing.assert_close(latent.grad, torch.ones_like(latent))
    assert noisy_latent(latent, 0.0, generator) is latent
    one = torch.randn(1, 16)
    assert noisy_latent(one, 0.2, generator) is one  # no spread to take a share of
