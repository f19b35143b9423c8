"""Serving a model locally: llama.cpp's OpenAI-compatible server, started and stopped in code."""
