"""Multiply-adds, parameter totals and memory estimates.

MACs are checked against PyTorch's own operation counter
(`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as
two FLOPs and ignores bias additions), and conv also against the sizes of
`F.unfold`. Memory is checked on small graphs whose numbers are worked out
by hand below.
"""

from __future__ import annotations

import random

import pytest

from i2dl_dsl.checker import check

BYTES = 4  # float32


def analysed(tmp_path, body: str, input_dims: str, name: str = "net"):
    path = tmp_path / f"{name}.net"
    path.write_text(f"network A {{\n    input x[{input_dims}]\n{body}\n}}\n")
    return check(path)


def one_layer(tmp_path, layer: str, input_dims: str, name: str = "net"):
    return analysed(tmp_path, f"    under_test: {layer}", input_dims, name).analysis


# ----------------------------------------------------------------- MACs


def flop_macs(fn, *inputs) -> int:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*inputs)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def _pair(v) -> str:
    return f"[{v[0]}, {v[1]}]"


def _conv_configs(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        groups = rng.choice([1, 2, 3])
        cin, cout = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        n = (rng.randint(6, 20), rng.randint(6, 20))
        k = (rng.randint(1, 4), rng.randint(1, 4))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        d = (rng.randint(1, 2), rng.randint(1, 2))
        p = (rng.randint(0, 2), rng.randint(0, 2))
        yield cin, cout, groups, n, k, s, d, p


def test_conv_macs_match_torch_flop_counter(tmp_path):
    torch = pytest.importorskip("torch")
    for index, (cin, cout, groups, n, k, s, d, p) in enumerate(_conv_configs(60, seed=3)):
        conv = torch.nn.Conv2d(cin, cout, k, s, p, d, groups)
        x = torch.zeros(1, cin, *n)
        try:
            expected = flop_macs(conv, x)
        except RuntimeError:
            continue  # the window does not fit
        layer = f"conv({cout}, k={_pair(k)}, s={_pair(s)}, p={_pair(p)}, d={_pair(d)}, groups={groups}, round=floor)"
        a = one_layer(tmp_path, layer, f"{cin}, {n[0]}, {n[1]}", f"c{index}")
        assert a.macs["under_test"] == expected, layer


def test_conv_macs_match_unfold_sizes(tmp_path):
    """F.unfold lays out one column of Cin·kh·kw input values per output
    position; each output value of a group is a dot product with the
    (Cin/groups)·kh·kw values of its group's part of the column:
    MACs = Cout · positions · column / groups."""
    torch = pytest.importorskip("torch")
    for index, (cin, cout, groups, n, k, s, d, p) in enumerate(_conv_configs(40, seed=4)):
        try:
            columns = torch.nn.functional.unfold(torch.zeros(1, cin, *n), k, d, p, s)
        except RuntimeError:
            continue  # the window does not fit
        expected = cout * columns.shape[2] * (columns.shape[1] // groups)
        layer = f"conv({cout}, k={_pair(k)}, s={_pair(s)}, p={_pair(p)}, d={_pair(d)}, groups={groups}, round=floor)"
        a = one_layer(tmp_path, layer, f"{cin}, {n[0]}, {n[1]}", f"c{index}")
        assert a.macs["under_test"] == expected, layer


def test_conv_macs_with_same_padding_and_stride(tmp_path):
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(3, 5, 3, 2)
    x = torch.nn.functional.pad(torch.zeros(1, 3, 9, 8), (0, 1, 1, 1))  # `same` for 9×8, k=3, s=2
    a = one_layer(tmp_path, "conv(5, k=3, s=2, p=same)", "3, 9, 8")
    assert a.macs["under_test"] == flop_macs(conv, x)


def test_upconv_macs_match_torch_flop_counter(tmp_path):
    """A transposed convolution multiplies every input value by every tap of
    its group's filters: Cin·Hin·Win·(Cout/groups)·kh·kw, padding or not."""
    torch = pytest.importorskip("torch")
    rng = random.Random(5)
    for index in range(40):
        groups = rng.choice([1, 2])
        cin, cout = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        n, k = (rng.randint(2, 8), rng.randint(2, 8)), (rng.randint(1, 4), rng.randint(1, 4))
        s, p = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(0, 1), rng.randint(0, 1))
        upconv = torch.nn.ConvTranspose2d(cin, cout, k, s, p, groups=groups)
        layer = f"upconv({cout}, k={_pair(k)}, s={_pair(s)}, p={_pair(p)}, groups={groups})"
        a = one_layer(tmp_path, layer, f"{cin}, {n[0]}, {n[1]}", f"u{index}")
        assert a.macs["under_test"] == flop_macs(upconv, torch.zeros(1, cin, *n)), layer


@pytest.mark.parametrize("inputs, outputs, bias", [(12, 5, True), (7, 1, False), (1, 9, True)])
def test_fc_macs_match_torch_flop_counter(tmp_path, inputs, outputs, bias):
    torch = pytest.importorskip("torch")
    a = one_layer(tmp_path, f"fc({outputs}, bias={str(bias).lower()})", str(inputs))
    assert a.macs["under_test"] == flop_macs(torch.nn.Linear(inputs, outputs, bias), torch.zeros(1, inputs))


@pytest.mark.parametrize("sequences", [True, False])
def test_rnn_macs_match_torch_flop_counter(tmp_path, sequences):
    torch = pytest.importorskip("torch")
    a = one_layer(tmp_path, f"rnn(5, sequences={str(sequences).lower()})", "6, 7")
    assert a.macs["under_test"] == flop_macs(torch.nn.RNN(7, 5, batch_first=True), torch.zeros(1, 6, 7))


@pytest.mark.parametrize("sequences", [True, False])
def test_lstm_macs_match_torch_flop_counter_step_by_step(tmp_path, sequences):
    """Per step an LSTM computes W_ih·x_t (4H×F) and W_hh·h (4H×H): 4H(F + H)
    multiply-adds; the gates' element-wise products are not weight products.
    The fused nn.LSTM kernel is invisible to the counter, so the oracle runs
    the same weights through nn.LSTMCell one step at a time. The last-step
    variant still computes every step."""
    torch = pytest.importorskip("torch")
    steps, features, hidden = 6, 7, 5
    cell = torch.nn.LSTMCell(features, hidden)

    def unrolled(x):
        state = None
        for t in range(steps):
            state = cell(x[:, t], state)
        return state[0]

    a = one_layer(tmp_path, f"lstm({hidden}, sequences={str(sequences).lower()})", f"{steps}, {features}")
    assert a.macs["under_test"] == flop_macs(unrolled, torch.zeros(1, steps, features))
    assert a.macs["under_test"] == steps * 4 * hidden * (features + hidden)


@pytest.mark.parametrize("layer, dims", [
    ("maxpool(k=2)", "3, 8, 8"), ("avgpool(k=3, s=1, p=1)", "3, 8, 8"), ("global_avgpool", "3, 8, 8"),
    ("global_maxpool", "3, 8, 8"), ("upsample(mode=bilinear)", "3, 8, 8"), ("flatten", "3, 8, 8"),
    ("dropout", "3, 8, 8"), ("relu", "3, 8, 8"), ("sigmoid", "10"), ("tanh", "4, 5"),
    ("leaky_relu", "3, 8, 8"), ("softmax", "10"), ("maxout(2)", "4, 8, 8"),
])
def test_parameter_free_layers_have_no_macs(tmp_path, layer, dims):
    a = one_layer(tmp_path, layer, dims)
    assert a.macs["under_test"] == 0 and a.layer_params("under_test") == 0


@pytest.mark.parametrize("merge", ["add", "concat"])
def test_merges_have_no_macs(tmp_path, merge):
    net = analysed(tmp_path, f"    a = x -> conv(2, k=1)\n    b = x -> conv(2, k=1)\n    m: {merge}(a, b)", "3, 4, 4")
    assert net.analysis.macs["m"] == 0


def test_total_macs_is_the_sum_over_layers(tmp_path):
    # conv1: 4·8·8 outputs × 3·3·3 taps = 6912; fc: 256·10 = 2560
    net = analysed(tmp_path, "    conv(4, k=3, p=1) -> relu -> flatten -> fc(10)", "3, 8, 8")
    assert net.analysis.total_macs == 4 * 8 * 8 * 3 * 3 * 3 + 4 * 8 * 8 * 10


# ----------------------------------------------------------------- parameter totals


RESIDUAL = """
    stem: conv(8, k=3, p=1, bias=false) -> batchnorm -> relu
    residual {
        conv(8, k=3, p=1, bias=false) -> batchnorm -> relu
        conv(8, k=3, p=1) -> batchnorm
    }
    prelu(per_channel=true)
    head: global_avgpool -> flatten -> fc(4)
"""


def torch_residual():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return nn.ModuleList([
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8),
        nn.PReLU(8), nn.Linear(8, 4),
    ])


def test_total_params_match_torch_parameters(tmp_path):
    net = analysed(tmp_path, RESIDUAL, "3, 8, 8")
    assert net.analysis.total_params == sum(p.numel() for p in torch_residual().parameters())


def test_total_buffers_are_the_running_statistics(tmp_path):
    net = analysed(tmp_path, RESIDUAL, "3, 8, 8")
    stats = [b for n, b in torch_residual().named_buffers() if n.endswith(("running_mean", "running_var"))]
    assert net.analysis.total_buffers == sum(b.numel() for b in stats) == 3 * 2 * 8


def test_parameter_bytes_count_parameters_and_buffers(tmp_path):
    net = analysed(tmp_path, RESIDUAL, "3, 8, 8")
    model = torch_residual()
    stats = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    expected = BYTES * (sum(p.numel() for p in model.parameters()) + stats)
    assert net.analysis.memory(net.graph, batch=1)["param_bytes"] == expected
    assert net.analysis.memory(net.graph, batch=32)["param_bytes"] == expected


# ----------------------------------------------------------------- activation memory

# x [1, 8, 8]: 64 elements
#   a = conv(2)  on x  → [2, 8, 8]: 128
#   b = conv(4)  on x  → [4, 8, 8]: 256
#   c = conv(4)  on a  → [4, 8, 8]: 256
#   y = add(b, c)      → [4, 8, 8]: 256
# Run in order, each tensor freed after its last reader has run:
#   x: {x} 64;  a: {x, a} 192;  b: {x, a, b} 448, then x is freed;
#   c: {a, b, c} 640, then a;  y: {b, c, y} 768, then b and c.
# Peak 768; training keeps all five tensors and a gradient each: 2 · 960.
DIAMOND = """
    a = x -> conv(2, k=3, p=1)
    b = x -> conv(4, k=1)
    c = a -> conv(4, k=3, p=1)
    y = add(b, c)
"""


@pytest.mark.parametrize("batch", [1, 3])
def test_inference_memory_is_the_peak_of_live_tensors(tmp_path, batch):
    net = analysed(tmp_path, DIAMOND, "1, 8, 8")
    assert net.analysis.memory(net.graph, batch)["inference_activation_bytes"] == BYTES * batch * 768


@pytest.mark.parametrize("batch", [1, 3])
def test_training_memory_keeps_every_output_and_its_gradient(tmp_path, batch):
    net = analysed(tmp_path, DIAMOND, "1, 8, 8")
    assert net.analysis.memory(net.graph, batch)["training_activation_bytes"] == 2 * BYTES * batch * 960


def test_inference_memory_of_a_chain_is_the_largest_neighbouring_pair(tmp_path):
    # [1,8,8] 64 → [16,8,8] 1024 → [16,4,4] 256 → [256] → [10]: the peak is 64 + 1024 while conv1 runs,
    # 1024 + 256 while the pool runs: 1280.
    net = analysed(tmp_path, "    conv(16, k=3, p=1) -> maxpool(k=2) -> flatten -> fc(10)", "1, 8, 8")
    assert net.analysis.memory(net.graph, 1)["inference_activation_bytes"] == BYTES * 1280


def test_an_unread_tensor_is_freed_once_computed(tmp_path):
    # d is never read (a warning says so). x 64; d [4,8,8] 256; a, y [8,8,8] 512 each.
    #   d: {x, d} 320, then d is dropped;  a: {x, a} 576, then x;  y: {a, y} 1024.
    net = analysed(tmp_path, """
    d = x -> conv(4, k=1)
    a = x -> conv(8, k=1)
    y = a -> conv(8, k=1)
    """, "1, 8, 8")
    assert net.warnings
    assert net.analysis.memory(net.graph, 1)["inference_activation_bytes"] == BYTES * 1024


def test_a_tensor_read_twice_by_one_layer_is_freed_once(tmp_path):
    # a [2,8,8] 128 read twice by the add: x 64; a: 192, then x; add: {a, s} 256.
    net = analysed(tmp_path, "    a = x -> conv(2, k=3, p=1)\n    s = add(a, a)", "1, 8, 8")
    assert net.analysis.memory(net.graph, 1)["inference_activation_bytes"] == BYTES * 256
