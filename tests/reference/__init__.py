"""Independent references for the tests: the zoo built in plain PyTorch."""
