"""`python -m provkb` runs the command line."""

from .cli import main

main()
