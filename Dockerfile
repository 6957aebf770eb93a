# The app image for docker-compose: the Faust workers, the CDC registrar and the batch jobs.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV STACK_HOME=/data STACK_CACHE=/cache
COPY stack stack
# The lake's Spark jars, pinned in stack/spark-jars.xml, into /cache/spark-jars (batch/session.py);
# no Spark session of the image resolves anything at its start.
RUN python -m stack.install spark-jars && rm -rf /root/.m2
COPY pyproject.toml README.md ./
COPY config config
COPY source source
COPY cdc cdc
COPY streams streams
COPY agents agents
COPY tables tables
COPY web web
COPY batch batch
COPY demo demo
RUN pip install --no-cache-dir -e .
