"""`python -m weavebuild` runs the `weave` command."""

from .cli import main

if __name__ == "__main__":
    main()
