# One image for every dncity process; compose.yaml chooses the process with `dncity run --service X`.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY gateway ./gateway
COPY dncity ./dncity
# A wheel of the project plus wheels of every dependency, so the runtime stage needs no compilers.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DNCITY_PROFILE=prod \
    DNCITY_VAR_DIR=/var/lib/dncity
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels dncity \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin dncity \
 && mkdir -p /var/lib/dncity \
 && chown dncity:dncity /var/lib/dncity
USER dncity
WORKDIR /var/lib/dncity
EXPOSE 8000 8101 8102 8103 8104 8105 8199
# Health checks are per process (each listens on its own port): see compose.yaml.
CMD ["dncity", "run", "--service", "gateway", "--host", "0.0.0.0"]
