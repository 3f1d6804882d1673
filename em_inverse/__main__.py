"""``python -m em_inverse`` runs the command line."""
from em_inverse.cli.app import main

main()
