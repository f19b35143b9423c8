"""After training, export and publish: merge, GGUF conversion and quantization with parity, Hub push, model cards."""
