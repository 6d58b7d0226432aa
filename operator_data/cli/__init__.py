"""The `pintar` command line."""
