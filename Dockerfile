# The training image for RunPod (make image; make runpod-up / runpod-template use it, runpod.toml names it).
# Base: axolotl's official cloud image at the repo's pins (axolotl 0.19.0, Python 3.11, torch 2.13.0, CUDA
# 12.8); its entrypoint starts sshd when the pod has PUBLIC_KEY (make runpod-logs uses that) and then runs
# our CMD. The tag follows axolotl's CI pattern <version>-py<python>-cu<cuda>-<torch>; tests/test_runpod.py
# checks it against constraints.txt. No secret is ever a build arg or ENV here: HF_TOKEN and the pod's
# RUNPOD_API_KEY arrive as pod environment at run time.
ARG AXOLOTL_IMAGE=axolotlai/axolotl-cloud:0.19.0-py3.11-cu128-2.13.0
FROM ${AXOLOTL_IMAGE}

# /workspace is the RunPod volume mount, which would hide anything the image put there: the repo lives in /opt.
WORKDIR /opt/affinage
COPY . .
# Install into the image's own Python environment (its torch/axolotl/deepspeed/flash-attn stay; setup.sh adds
# the rest at the pinned versions, builds llama-cpp-python and takes llama.cpp's converter from its sdist);
# .venv points at it so the Makefile and CMD use the same interpreter as on a workstation.
RUN rm -rf .venv outputs && env_prefix="$(python -c 'import sys; print(sys.prefix)')" && \
    VENV="$env_prefix" bash launch/setup.sh && ln -s "$env_prefix" .venv && rm -rf /root/.cache/pip

ENV OUTPUTS=/workspace/outputs \
    HF_HOME=/workspace/hf \
    AXOLOTL_DO_NOT_TRACK=1 \
    JUPYTER_DISABLE=1 \
    PYTHONPATH=/opt/affinage \
    PYTHONUNBUFFERED=1
CMD ["/opt/affinage/.venv/bin/python", "-m", "launch.cloud.runpod.entrypoint"]
