"""Checks and estimates before anything expensive runs: `make check` (schema, data, end of turn, LoRA targets,
lengths, disk) and `make plan` (memory, disk, time, dollars). They read recipes and data; they never train."""
