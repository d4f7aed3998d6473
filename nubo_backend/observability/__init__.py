"""Seeing the service run: Prometheus metrics (metrics.py, exporter.py, sampler.py), the HTTP
adapter that records every answer (http.py) and OpenTelemetry traces (tracing.py)."""
