"""The dashboard: server-rendered pages, their templates and static assets."""
