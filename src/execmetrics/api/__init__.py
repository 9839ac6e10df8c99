"""The HTTP server: the versioned JSON API, the dashboard pages, and what guards them."""
