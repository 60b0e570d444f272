"""The REST API and the web server: FastAPI app factory, errors, shared dependencies."""
