"""The `enecg` command line: one module per subcommand."""
