"""RunPod as a cloud provider (provider.py, registered in launch/cloud/registry.py): the pod and cluster requests
built from the plan (request.py, spec.py), the SDK and REST calls with retries (api.py, rest.py), the commands
(commands.py) and the pod's own side (entrypoint.py)."""
