"""FastAPI app, generated routers, settings."""
