# Code location image for imgassets (used by the production docker-compose / Kubernetes setups).
# Ultralytics needs OpenCV's system libraries; torch comes from PyPI (CUDA build, runs on CPU too).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/imgassets
COPY pyproject.toml README.md dagster.yaml workspace.yaml ./
COPY imgassets ./imgassets
COPY deploy ./deploy
RUN pip install --no-cache-dir .

# The shared drive is mounted read-only at /shared; state lives in /data.
ENV IMGASSETS_HOME=/data/imgassets \
    IMGASSETS_SHARED_ROOT=/shared \
    DAGSTER_HOME=/data/imgassets/dagster \
    YOLO_OFFLINE=1
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "imgassets.definitions"]
