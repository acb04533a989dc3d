# lakegate server image: `docker build -t lakegate .`, then mount a configuration at /etc/lakegate/server.yaml.
# See docs/operations.md (database, publicUrl, health checks).

FROM python:3.11-slim AS build
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels for lakegate and its dependencies, with the PostgreSQL driver for multi-replica deployments.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lakegate --create-home lakegate \
    && mkdir -p /etc/lakegate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "lakegate[postgres]" && rm -rf /wheels
USER lakegate
WORKDIR /var/lib/lakegate
ENV PYTHONUNBUFFERED=1 \
    LAKEGATE_HOST=0.0.0.0
VOLUME ["/var/lib/lakegate"]
EXPOSE 8080
# SIGTERM: stop accepting, finish requests in flight (shutdownTimeoutSeconds), close the database, exit 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["lakegate"]
CMD ["serve", "--config", "/etc/lakegate/server.yaml"]
