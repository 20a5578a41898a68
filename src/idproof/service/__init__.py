"""The idproof HTTP service (FastAPI): ``create_app(Settings(...))``; run it with ``idproof serve``."""

from idproof.service.app import Settings, create_app

__all__ = ["Settings", "create_app"]
