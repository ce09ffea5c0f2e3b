"""Front doors: what turns a user's model into the torch MLIR that mipsc's pipeline reads.

- `from_torch`: an `nn.Module` (or one named in a Python file, `model.py:make_model`), exported
  with iree-turbine's `aot.export` (the `mipsc[torch]` extra);
- `from_onnx`: an `.onnx` file, imported with `iree-import-onnx` and converted from `onnx.*` to
  torch ops by `iree-opt` (the `mipsc[onnx]` extra);
- `source`: picks one by the input's name, for `mipsc compile` and `mipsc opt`.

torch and onnx are imported only when such an input is given: `import mipsc` stays fast.
"""
