"""Scorers and report formatting, one module per kind of output."""
