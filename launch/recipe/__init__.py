"""Recipes: composition (extends, fragments), the typed meta block, the registry of recipes, ARGS overrides,
device profiles, model facts (the architecture on torch's meta device), and resolution to the exact axolotl
config that will run."""
