"""The web console: server-rendered pages (Jinja2 + HTMX), bilingual catalogues, static files."""
