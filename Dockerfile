# The app image for docker-compose: the Faust workers, the CDC registrar and the batch jobs.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY stack stack
COPY source source
COPY cdc cdc
COPY streams streams
COPY agents agents
COPY tables tables
COPY web web
COPY batch batch
COPY demo demo
RUN pip install --no-cache-dir -e .
ENV STACK_HOME=/data STACK_CACHE=/cache
