"""The API's documentation pages, served from vendored assets so they work without internet.

``/api/docs`` is Swagger UI and ``/api/redoc`` is ReDoc, both reading ``/api/openapi.json``. Their
JavaScript and CSS come from ``web/static/vendor/`` (versions and licences in its README), never
from a CDN, and ReDoc is told not to fetch Google fonts.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"
SWAGGER_JS = f"{VENDOR}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{VENDOR}/swagger-ui/swagger-ui.css"
SWAGGER_FAVICON = f"{VENDOR}/swagger-ui/favicon-32x32.png"
REDOC_JS = f"{VENDOR}/redoc/redoc.standalone.js"


def install(app: FastAPI, *, docs_url: str = "/api/docs", redoc_url: str = "/api/redoc") -> None:
    """Add the Swagger UI and ReDoc pages to ``app`` (create it with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/api/openapi.json"
    title = app.title

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        """Swagger UI: try the API from the browser."""
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} API", swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS, swagger_favicon_url=SWAGGER_FAVICON,
            oauth2_redirect_url=None,
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        """ReDoc: the API reference on one page."""
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{title} API reference", redoc_js_url=REDOC_JS,
            redoc_favicon_url=SWAGGER_FAVICON, with_google_fonts=False,
        )
