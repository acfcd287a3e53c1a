"""One module per `weave` subcommand, imported lazily by `cli.LazyGroup`."""
