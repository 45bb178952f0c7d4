"""The platform's services; each is its own FastAPI app with its own database."""
