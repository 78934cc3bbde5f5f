"""The paper's self-supervised model: transformations, networks, training, export, scoring.

Never imports :mod:`ecgaffect.stream` or :mod:`ecgaffect.gui`.
"""
