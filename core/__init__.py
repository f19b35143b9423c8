"""What every step shares: errors, atomic writes, paths, YAML with line numbers, typed settings from the
environment, the run directory and its typed manifest, HTTP retries, the metric registry."""
