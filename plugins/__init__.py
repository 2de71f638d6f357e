"""ganzoo's built-in component plugins: one component per module.

Every module of this package (``ganzoo_plugins``) is imported by its module path and registered through the
same hooks and contract checks as a third-party plugin's entry point, so built-ins and installed plugins show up
alike in ``ganzoo list``. A module whose name starts with ``_`` is a helper, not a plugin.
"""
