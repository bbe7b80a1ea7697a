# Image of the recommendation API, the pipeline metrics exporter and the recsys CLI
# (database migrations, model rollback). Built from the repository root by docker compose:
#   build: {context: ., dockerfile: docker/api.Dockerfile}
# rectools-lightfm compiles a C extension (OpenMP): the build stage has the compiler,
# the runtime stage only libgomp.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements.txt /src/requirements.txt
RUN pip install -r /src/requirements.txt
COPY pyproject.toml /src/pyproject.toml
COPY recsys /src/recsys
RUN pip install --no-deps /src

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 recsys
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 RECSYS_VAR_DIR=/home/recsys/var
USER recsys
WORKDIR /home/recsys
EXPOSE 8000 9108
CMD ["python", "-m", "recsys", "serve", "--host", "0.0.0.0", "--port", "8000"]
