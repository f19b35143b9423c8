# Placeholder until the launch issue lands (multi-GPU / RunPod): the image will be FROM the official axolotl
# image matching constraints.txt's axolotl pin (0.19.0), add this repo, keep HF_HOME on the /workspace volume
# and run an entrypoint that reads RECIPE from the pod's env. Not built or tested yet.
FROM python:3.11-slim
WORKDIR /workspace/affinage
COPY . .
ENV HF_HOME=/workspace/hf AXOLOTL_DO_NOT_TRACK=1
CMD ["bash", "-c", "make train RECIPE=${RECIPE:-smollm2-135m-cpu}"]
