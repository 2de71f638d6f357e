"""ganzoo's built-in component plugins: one component per module.

Each module is listed in the ``ganzoo`` entry-point group of ganzoo's own
``pyproject.toml`` and is loaded exactly like a third-party plugin.
"""
