"""Recipe resolution, preflight checks, run directories and launching."""
