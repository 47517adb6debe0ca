"""What to say about a word that is no layer or block.

A suggestion must be close and must not mislead. `gelu` is one letter from
`relu`, but a user who writes `gelu` means GELU: "did you mean 'relu'?"
offers a different function. So:

- a name another framework gives one of our layers (`Conv2d`, `Linear`,
  `BatchNorm2d`) is answered with ours;
- a function other frameworks have and this language does not (`mish`,
  `gelu` where it is not registered) is said to be no layer here, with the
  layers of its kind that exist;
- otherwise a known name is suggested only within a small edit distance
  (one edit up to five letters, two beyond; a transposition is one edit):
  `rleu` → `relu`, `maxpol` → `maxpool`, but `swish2` → nothing. difflib's
  ratio, used elsewhere for arguments, calls `gelu`/`relu` and `elu`/`relu`
  close (0.75, 0.86), which is exactly the mistake.
"""

from __future__ import annotations

from typing import Iterable

from ..layers import REGISTRY

# Other frameworks' names (PyTorch's modules and functions, Keras's layers),
# lower-cased, for layers this language has under another name.
SYNONYMS = {
    "conv2d": "conv", "conv1d": "conv", "convolution": "conv", "convolution2d": "conv",
    "convtranspose2d": "upconv", "conv_transpose2d": "upconv", "conv2dtranspose": "upconv", "deconv": "upconv",
    "linear": "fc", "dense": "fc",
    "maxpool2d": "maxpool", "max_pool2d": "maxpool", "maxpooling2d": "maxpool",
    "avgpool2d": "avgpool", "avg_pool2d": "avgpool", "averagepooling2d": "avgpool",
    "adaptiveavgpool2d": "global_avgpool", "globalaveragepooling2d": "global_avgpool",
    "adaptivemaxpool2d": "global_maxpool", "globalmaxpooling2d": "global_maxpool",
    "batchnorm2d": "batchnorm", "batchnorm1d": "batchnorm", "batch_norm": "batchnorm",
    "batchnormalization": "batchnorm",
    "leakyrelu": "leaky_relu", "upsampling2d": "upsample", "interpolate": "upsample",
    "cat": "concat", "concatenate": "concat", "multiply": "mul", "sum": "add",
}

# Functions other frameworks have, by the family of the layers that would
# stand in their place here; once one is registered it is simply a layer.
ELSEWHERE = {
    **dict.fromkeys(("gelu", "silu", "swish", "mish", "elu", "selu", "celu", "softplus", "softsign", "hardswish",
                     "hardsigmoid", "hardtanh", "relu6", "logsigmoid", "log_softmax", "glu", "tanhshrink",
                     "softmin", "threshold"), "activation"),
    **dict.fromkeys(("layernorm", "layer_norm", "groupnorm", "group_norm", "instancenorm", "instance_norm",
                     "instancenorm2d", "localresponsenorm", "lrn"), "norm"),
    **dict.fromkeys(("gru", "transformer", "attention", "multiheadattention", "embedding"), "recurrent"),
}


def unknown_hint(name: str, blocks: Iterable[str]) -> str:
    """The hint for an unknown layer or block name; '' when nothing fits."""
    lower = name.lower()
    if lower in REGISTRY and lower != name:
        return f"did you mean '{lower}'? (names are lower case)"
    if lower in SYNONYMS and SYNONYMS[lower] in REGISTRY:
        return f"did you mean '{SYNONYMS[lower]}'? ('{name}' elsewhere is '{SYNONYMS[lower]}' here)"
    if lower in ELSEWHERE:
        family = ELSEWHERE[lower]
        kinds = [kind for kind, cls in REGISTRY.items() if cls.family == family]
        return (f"'{name}' is a function of other frameworks, not a layer of this language; "
                f"the {family} layers here are {', '.join(kinds)}")
    close = closest(name, [*REGISTRY, *blocks])
    return f"did you mean '{close}'?" if close else ""


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate within the edit distance allowed for `word`'s length."""
    allowed = 1 if len(word) <= 5 else 2
    best: tuple[int, str] | None = None
    for candidate in sorted(set(candidates)):
        if abs(len(candidate) - len(word)) > allowed:
            continue
        distance = edit_distance(word.lower(), candidate.lower())
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours
    (optimal string alignment distance)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[len(b)]
