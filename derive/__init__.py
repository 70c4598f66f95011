"""derive: backpropagation derived symbolically, step by step, and checked."""

__version__ = "0.1.0"
