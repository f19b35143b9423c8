# The pre-built training image, the fast option (make image; IMAGE=<its name> make runpod-up). Without it pods start
# from the base below, axolotl's official cloud image at the repo's pins, and fetch and set up this repo at pod start
# (runpod.toml, launch/cloud/bootstrap.sh). The tag is axolotl's plain release tag, axolotlai/axolotl-cloud:<version>
# for the lock's axolotl (the scheme and its source: launch/cloud/image.py); tests/test_image.py checks it against
# constraints.txt, the installed axolotl, runpod.toml and the template. Its entrypoint starts sshd when the pod
# has PUBLIC_KEY (make runpod-logs uses that) and then runs our CMD. No secret is ever a build arg or ENV here:
# HF_TOKEN and the pod's RUNPOD_API_KEY arrive as pod environment at run time.
ARG AXOLOTL_IMAGE=axolotlai/axolotl-cloud:0.21.0
FROM ${AXOLOTL_IMAGE}

# The repo lives in /opt; the RunPod volume is mounted at /runpod-volume (axolotl's newer images keep their Python
# environment under /workspace, which a volume mounted there would hide).
WORKDIR /opt/affinage
COPY . .
# Install into the image's own Python environment in image mode (launch/setup.sh): what the image provides (torch,
# flash-attn, deepspeed, triton, xformers, bitsandbytes, axolotl) is never replaced, only what it lacks is added at
# the pinned versions; .venv points at it so the Makefile and CMD use the same interpreter as on a workstation.
RUN rm -rf .venv outputs && env_prefix="$(python -c 'import sys; print(sys.prefix)')" && \
    VENV="$env_prefix" SETUP_MODE=image bash launch/setup.sh && ln -s "$env_prefix" .venv && rm -rf /root/.cache/pip

ENV OUTPUTS=/runpod-volume/outputs \
    HF_HOME=/runpod-volume/hf \
    AXOLOTL_DO_NOT_TRACK=1 \
    JUPYTER_DISABLE=1 \
    PYTHONPATH=/opt/affinage \
    PYTHONUNBUFFERED=1
CMD ["/opt/affinage/.venv/bin/python", "-m", "launch.cloud.runpod.entrypoint"]
