"""tuneloop workers: Celery tasks around a plain torch + transformers training core.

Importing `worker` or `worker.celery_app` does not import torch, so the web
server can send tasks by name.
"""
