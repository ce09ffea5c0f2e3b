"""mipsc: route the matmuls of PyTorch models to a hand-picked kernel library through IREE."""

__version__ = "0.1.0"
