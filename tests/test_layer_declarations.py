"""What layers declare and drivers read (layers/base.py): how every
parameter and buffer starts, the random inputs a layer draws in training,
and whether it needs batch statistics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from i2dl_dsl.diagnostics import Span
from i2dl_dsl.elaborate import layer_node
from i2dl_dsl.elaborate.node import LayerNode, add_layer_node
from i2dl_dsl.layers.base import REGISTRY, Args, Layer
from i2dl_dsl.layers.declarations import FAN_IN, ONES, ZEROS, Init, ScaledBernoulli, constant
from i2dl_dsl.lowering.initial_values import SCHEMES, generator, initializer
from i2dl_dsl.train.loop import random_inputs
from test_onnx_layers import CASES, compiled


def tensors_of(net):
    """(layer, suffix, shape) of every parameter and buffer of a network."""
    a = net.analysis
    for node in a.order:
        for table in (a.params, a.buffers):
            for suffix, shape in table.get(node, {}).items():
                yield node, suffix, tuple(shape)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_parameter_and_buffer_declares_its_initialisation(tmp_path, case):
    """Over every case of every layer kind (test_onnx_layers covers the registry)."""
    net = compiled(tmp_path, case)
    for node, suffix, _ in tensors_of(net):
        assert isinstance(layer_node(net.graph, node).layer.init_of(suffix), Init)


def old_rule(layer: Layer, suffix: str, shape, scheme: str, rng) -> np.ndarray:
    """The initialisation before layers declared it, kept as the oracle:
    batch norm's scale and variance at one, PReLU's slope at its argument,
    biases and other 1-D tensors zero, the rest by the scheme over the fan-in."""
    if layer.kind == "batchnorm":
        return (np.ones if suffix in ("weight", "running_var") else np.zeros)(shape, dtype=np.float32)
    if layer.kind == "prelu":
        return np.full(shape, layer.a.init, dtype=np.float32)
    if layer.kind in ("layernorm", "groupnorm"):  # kinds added since: γ at one, β at zero, as batch norm
        return (np.ones if suffix == "weight" else np.zeros)(shape, dtype=np.float32)
    if layer.kind == "scale":  # added since: every factor at its argument
        return np.full(shape, layer.a.init, dtype=np.float32)
    if suffix.startswith("bias") or len(shape) < 2:
        return np.zeros(shape, dtype=np.float32)
    fan_in = int(np.prod(shape[1:]))
    std = {"gaussian": 0.01, "xavier": np.sqrt(1.0 / fan_in), "he": np.sqrt(2.0 / fan_in)}[scheme]
    values = rng.standard_normal(shape, dtype=np.float32)
    values *= np.float32(std)
    return values


@pytest.mark.parametrize("scheme", SCHEMES)
def test_declared_initial_values_are_the_old_ones_bit_for_bit(tmp_path, scheme):
    for case in CASES:
        net = compiled(tmp_path, case)
        for seed in (0, 7):
            init = initializer(net.graph, scheme, seed)
            for node, suffix, shape in tensors_of(net):
                expected = old_rule(layer_node(net.graph, node).layer, suffix, shape, scheme,
                                    generator(seed, f"{node}.{suffix}"))
                np.testing.assert_array_equal(init(node, suffix, shape), expected, err_msg=f"{case.id} {node}.{suffix}")


class _Scaled(Layer):
    """A layer-norm-like kind, unregistered: a 1-D parameter called `weight`."""

    kind = "scaled_for_test"

    def params(self, inputs, output):
        return {"weight": (inputs[0][0],), "shift": (inputs[0][0],)}

    def inits(self):
        return {"weight": ONES}


def _graph_with(layer: Layer) -> nx.DiGraph:
    graph = nx.DiGraph()
    add_layer_node(graph, LayerNode("s", layer, (), Span("test.net", 1, 1, 1, 2)))
    return graph


def test_a_1d_weight_starts_as_declared_and_an_undeclared_tensor_is_an_error():
    init = initializer(_graph_with(_Scaled(Args({}))), "he", 0)
    np.testing.assert_array_equal(init("s", "weight", (4,)), np.ones(4, np.float32))
    with pytest.raises(LookupError, match="'scaled_for_test' declares no initialisation for its tensor 'shift'"):
        init("s", "shift", (4,))


def test_init_rules(monkeypatch):
    assert constant(0.25) == Init("constant", 0.25) and ZEROS == constant(0) and ONES == constant(1)
    with pytest.raises(ValueError, match="unknown initialisation rule"):
        Init("uniform")
    monkeypatch.setattr(_Scaled, "inits", lambda self: {"weight": FAN_IN})
    init = initializer(_graph_with(_Scaled(Args({}))), "he", 0)
    with pytest.raises(ValueError, match="two or more axes"):  # a fan-in needs one
        init("s", "weight", (4,))


def test_only_declared_kinds_keep_buffers_or_need_batch_statistics():
    """Drivers read these flags; batch norm is the one kind with them today."""
    assert {kind for kind, cls in REGISTRY.items() if cls.batch_statistics} == {"batchnorm"}
    assert {kind for kind, cls in REGISTRY.items() if cls.holds} == {"batchnorm"}
    assert REGISTRY["batchnorm"].title == "batch norm" and REGISTRY["relu"].title == ""


# ----------------------------------------------------------------- random inputs


def test_dropout_masks_are_drawn_bit_for_bit_as_before():
    """The loop's draw from the declarations equals the former inverted-dropout
    formula, mask after mask from the one generator."""
    declared = {"a.mask": ScaledBernoulli((3, 4, 4), 0.75), "b.mask": ScaledBernoulli((5,), 0.5)}
    drawn = random_inputs(declared, 6, np.random.default_rng([0, 1, 2, 2]))
    rng = np.random.default_rng([0, 1, 2, 2])
    for name, (shape, keep) in {"a.mask": ((3, 4, 4), 0.75), "b.mask": ((5,), 0.5)}.items():
        expected = (rng.random((6, *shape), dtype=np.float32) < keep).astype(np.float32) / keep
        assert drawn[name].dtype == np.float32
        np.testing.assert_array_equal(drawn[name], expected)


def test_a_per_sample_mask_drops_whole_samples():
    """Stochastic depth's mask [N, 1, 1, 1]: one draw per sample."""
    mask = ScaledBernoulli((1, 1, 1), 0.5).draw(np.random.default_rng(3), 400)
    assert mask.shape == (400, 1, 1, 1) and set(np.unique(mask)) == {0.0, 2.0}
    assert 150 < np.count_nonzero(mask) < 250


def test_dropout_declares_its_mask_only_when_it_drops():
    dropout = REGISTRY["dropout"]
    assert dropout(Args({"p": 0.25})).random_inputs((3, 4)) == {"mask": ScaledBernoulli((3, 4), 0.75)}
    assert dropout(Args({"p": 0.0})).random_inputs((3, 4)) == {}
    assert REGISTRY["relu"](Args({})).random_inputs((3,)) == {}
