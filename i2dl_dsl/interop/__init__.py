"""Interoperation with other tools' files: weights, models and code."""
