"""python -m tests.mutants OUT_DIR: write every firmware mutant as an overlay directory."""
import sys

from tests.mutants import main

main(sys.argv[1:])
