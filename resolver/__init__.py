"""The recipe system, below everything that runs a recipe: composition (extends, fragments), the typed meta block,
the registry of recipes, ARGS overrides, device profiles, model facts (the architecture on torch's meta device),
chat turns, and resolution to the exact axolotl config that will run. It imports only core; the recipe files
themselves live in recipes/."""
