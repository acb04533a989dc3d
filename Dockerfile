# lakegate server image: `docker build -t lakegate .`, then mount a configuration at /etc/lakegate/server.yaml.
# See docs/operations.md (database, publicUrl, health checks).

FROM python:3.11-slim AS build
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels for lakegate and its dependencies with every cloud extra (Azure, GCS tables) and the PostgreSQL driver
# (multi-replica deployments): one image serves any configuration.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[azure,gcp,postgres]"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lakegate --create-home lakegate \
    && mkdir -p /etc/lakegate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "lakegate[azure,gcp,postgres]" && rm -rf /wheels
USER lakegate
WORKDIR /var/lib/lakegate
# The configuration's path: `serve` and `healthcheck` both read LAKEGATE_CONFIG (move it here, not in CMD).
ENV PYTHONUNBUFFERED=1 \
    LAKEGATE_HOST=0.0.0.0 \
    LAKEGATE_CONFIG=/etc/lakegate/server.yaml
VOLUME ["/var/lib/lakegate"]
EXPOSE 8080
# SIGTERM: stop accepting, finish requests in flight (shutdownTimeoutSeconds), close the database, exit 0.
STOPSIGNAL SIGTERM
# /healthz on the port (and scheme) of the configuration, LAKEGATE_PORT included.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["lakegate", "healthcheck"]
ENTRYPOINT ["lakegate"]
CMD ["serve"]
