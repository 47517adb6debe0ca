"""Interoperation with other tools' files: weights, models and code (a
checked network as PyTorch source: `torch_code`). Each module reads the
checked graph or writes one; none checks again."""
