"""ganzoo's version, in a module of its own so that any module can read it without importing the package."""

__version__ = "0.1.0"

# How to install this project. The name "ganzoo" on the Python package index belongs to an unrelated project, so
# "pip install ganzoo" does not give this one: everything a user reads (model cards, docs) says this instead.
INSTALL_NOTE = ("ganzoo is not on the Python package index yet (the `ganzoo` project there is an unrelated one): "
                "install it from a checkout of its source")
INSTALL_COMMAND = "pip install ./ganzoo        # in the folder that holds the ganzoo checkout"
