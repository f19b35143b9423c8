"""The repo's small original datasets and the data tooling (validate, stats, split, convert)."""
