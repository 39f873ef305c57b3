"""Factories: one per scheduler ``type``, from a validated spec's fields to an engine node.

Each factory takes the node's field path (``loc``), the number of param groups and the
spec's fields as keyword arguments, makes the checks that need the param groups or that
PyTorch (or the other library) makes while building, as optax's schedule functions do, and
returns the node. :mod:`service.engine.registry` maps every ``type`` to its factory.
"""
