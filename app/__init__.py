"""tuneloop web side: FastAPI pages and REST API over the feedback database.

Nothing under app/ imports torch or transformers; the server starts in about a
second and stays responsive while workers train.
"""
