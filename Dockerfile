# The OMS image: one image for web (gunicorn), worker (rqworker) and cron (rqcron).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY oms ./oms
COPY channels_adapters ./channels_adapters
COPY carriers ./carriers
COPY inventory ./inventory
COPY dispatch ./dispatch
COPY reporting ./reporting
RUN pip install --no-cache-dir ".[mysql]"
COPY . .
RUN useradd --system --home /app oms && mkdir -p /app/var && chown -R oms /app/var
USER oms
ENV DJANGO_SETTINGS_MODULE=oms.settings.production
EXPOSE 8000
# Four processes of four threads: on two cores, fewer threads per process wait less on one GIL (bench/packing.py,
# bench/webhook_ingest.py: p95 and p99 fell by a third to a half against two processes of sixteen threads).
CMD ["gunicorn", "oms.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--worker-class", "gthread", "--threads", "4"]
