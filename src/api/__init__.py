"""The HTTP API and the command line: the service's edges, built by create_app() and cli.main()."""
