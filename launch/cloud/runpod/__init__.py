"""RunPod: the pod request built from the plan (spec), the SDK calls with retries (api) and the
`make runpod-*` commands (__main__). The pod's own side is launch/entrypoint.py."""
