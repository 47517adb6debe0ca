"""Interoperation with other tools: a checked network as PyTorch source
(`torch_code`). Each module reads the checked graph; none checks again."""
