# Two images from one file:
#   web    - the FastAPI server and the CLI (no torch; starts in about a second)
#   worker - Celery workers that generate and train (torch + transformers)
FROM python:3.11-slim AS web
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /srv/tuneloop
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY worker ./worker
COPY simulation ./simulation
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e .
RUN useradd --create-home tuneloop && mkdir -p /data && chown tuneloop /data
USER tuneloop
EXPOSE 8000
CMD ["tuneloop", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM web AS worker
USER root
# The default Linux wheel of torch carries CUDA for the GPU workers.
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install --no-cache-dir "${TORCH_SPEC}" && pip install --no-cache-dir -e '.[train]'
USER tuneloop
CMD ["tuneloop", "worker", "--queues", "generate,train"]
