"""People and pipes: rendering results, the live watch loop, and the interactive REPL."""
