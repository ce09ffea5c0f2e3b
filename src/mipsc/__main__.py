"""`python -m mipsc ...`: the `mipsc` command, for environments without its script on PATH."""

from mipsc.cli import main

main(prog_name="mipsc")
