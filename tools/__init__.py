"""After training: merge, GGUF conversion and quantization, Hub push, model cards."""
