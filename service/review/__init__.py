"""The review console (``/review``): reviewers see what the model was given and judge it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.review.routes import STATIC_DIR, router


def install_review(app: FastAPI) -> None:
    """Serve the console's pages and its static files (CSS, the shortcuts script)."""
    app.include_router(router)
    app.mount("/review/static", StaticFiles(directory=STATIC_DIR), name="review-static")
