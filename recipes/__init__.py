"""The recipes shipped with ganzoo (installed as the package ``ganzoo_recipes``): ``ganzoo recipes`` lists them."""
