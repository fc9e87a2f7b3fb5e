"""The built-in systems, one module each; :func:`serbench.systems.registry.load_builtin` imports them all.

A module here defines a :class:`~serbench.systems.base.System` subclass with its settings
and registers it. Keep the module-level imports light (the CLI reads the registry for its
choices and help): import numpy, scikit-learn and torch inside the methods that use them.
"""
