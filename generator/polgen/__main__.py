"""`python -m polgen` runs the CLI."""

from polgen.cli import main

main()
