import pytest
import torch

from ecgaffect.model.networks import (
    HEAD_VARIANTS,
    EmotionNet,
    Encoder,
    PretextNet,
    class_probabilities,
    count_parameters,
    l2_penalty,
)


def test_parameter_counts_match_the_paper():
    enc = Encoder()
    assert count_parameters(enc) == 329_152
    assert count_parameters(PretextNet(enc)) == 561_223


def test_layer_shapes_follow_the_table():
    enc = Encoder()
    x = torch.randn(2, 1, 2560)
    shapes = []
    h = x
    for layer in enc.features:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv1d | torch.nn.MaxPool1d):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [
        (32, 2560),
        (32, 2560),
        (32, 1277),
        (64, 1277),
        (64, 1277),
        (64, 635),
        (128, 635),
        (128, 635),
    ]
    assert enc(x).shape == (2, 128)


def test_activation_is_leaky_relu_02_and_init_is_glorot_with_zero_bias():
    enc = Encoder()
    acts = [m for m in enc.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 6
    assert all(a.negative_slope == 0.2 for a in acts)
    conv = enc.features[1]
    assert isinstance(conv, torch.nn.Conv1d)
    fan_in, fan_out = 1 * 32, 32 * 32
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.8 * bound  # uniform over the full Glorot range
    assert torch.count_nonzero(conv.bias) == 0


def test_emotion_net_freezes_encoder_and_keeps_it_in_eval():
    net = EmotionNet(Encoder(), {"arousal": 2, "valence": 9}, variant="amigos")
    assert all(not p.requires_grad for p in net.encoder.parameters())
    net.train()
    assert not net.encoder.training
    out = net(torch.randn(3, 1, 2560))
    assert out["arousal"].shape == (3, 2)
    assert out["valence"].shape == (3, 9)
    dropouts = [m for m in net.heads["arousal"] if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in dropouts] == [0.4, 0.4, 0.4]


@pytest.mark.parametrize("variant", sorted(HEAD_VARIANTS))
def test_head_variants(variant):
    net = EmotionNet(Encoder(), {"t": 2}, variant=variant)
    linears = [m for m in net.heads["t"] if isinstance(m, torch.nn.Linear)]
    assert len(linears) == HEAD_VARIANTS[variant].n_layers + 1
    assert all(m.out_features == 512 for m in linears[:-1])


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown head variant 'case'"):
        EmotionNet(Encoder(), {"t": 2}, variant="case")


def test_probabilities_sum_to_one_and_keep_argmax():
    logits = torch.tensor([[2.0, -1.0], [-3.0, 0.5]])
    p = class_probabilities(logits)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(2))
    assert p.argmax(dim=1).tolist() == [0, 1]
    p3 = class_probabilities(torch.tensor([[0.0, 1.0, 2.0]]))
    torch.testing.assert_close(p3, torch.softmax(torch.tensor([[0.0, 1.0, 2.0]]), dim=1))


def test_l2_penalty_counts_weights_not_biases():
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.fill_(100.0)
    assert l2_penalty(lin, 1e-4).item() == pytest.approx(1e-4 * 0.5 * 6 * 4.0)
    frozen = EmotionNet(Encoder(), {"t": 2})
    head_only = sum(
        0.5 * m.weight.pow(2).sum().item()
        for m in frozen.heads.modules()
        if isinstance(m, torch.nn.Linear)
    )
    assert l2_penalty(frozen, 1.0).item() == pytest.approx(head_only, rel=1e-5)
