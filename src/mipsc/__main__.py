"""The `mipsc` command (its script, and `python -m mipsc` for environments without it on PATH),
its imports made while Python's cyclic garbage collector is paused.

The imports (xDSL's dialects and mipsc's: thousands of classes, functions and dicts, none of
them garbage) set off collection after collection, each scanning what was made so far: ~25% of
the CPU time of `mipsc compile --emit=iree-input` on a committed export (an interleaved A/B on
mm_static and gpt2_block, 9 runs each). The collector then runs as usual, with what the imports
made frozen out of its scans (gc.freeze).
"""

import gc


def run() -> None:
    """The `mipsc` command line."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        from mipsc.cli import main
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    main(prog_name="mipsc")


if __name__ == "__main__":
    run()
