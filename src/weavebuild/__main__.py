"""`python -m weavebuild` runs the `weave` command."""

from .entry import main

if __name__ == "__main__":
    main()
