"""One module per ``ecgaffect`` subcommand: a thin ``register(subparsers)`` and ``run(args)``.

Library modules never import from here; commands call the library. :data:`COMMAND_MODULES`
lists the modules in the order of ``ecgaffect --help``.
"""

#: Command modules (under this package); order is the order in ``ecgaffect --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pretrain",
    "finetune",
    "demo",
    "export",
    "model_info",
    "score",
    "evaluate",
    "train",
    "datasets",
    "live",
    "gateway",
    "calibrate",
    "gui",
)
