"""``python -m radguard``."""

from radguard.cli import main

main()
