"""The trained models that ship with ganzoo: one model folder each (``ganzoo models`` lists them; any command that
takes a model folder takes its name). Written by ``python bench/ship_models.py``, never by hand."""
