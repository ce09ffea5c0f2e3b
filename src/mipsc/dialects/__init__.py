"""MLIR dialects of mipsc: the torch subset, util globals, mips, and the IREE ops it emits."""
