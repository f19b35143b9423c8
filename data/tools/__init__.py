"""The data command-line tools: data-check, data-split, data-convert, personas (over the library in data/)."""
