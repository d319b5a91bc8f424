"""``python -m radguard.cli``."""

from radguard.cli import main

main()
