"""One module per ``ecgaffect`` subcommand: a thin ``register(subparsers)`` and ``run(args)``.

Library modules never import from here; commands call the library.
"""
