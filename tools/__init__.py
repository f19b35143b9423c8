"""Everything after training that works on model files: export/publish (tools/export), local serving
(tools/serve), and tiny random models of any architecture for tests and benchmarks (tools/tiny_models.py)."""
