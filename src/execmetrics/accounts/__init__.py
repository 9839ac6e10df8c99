"""Who may use the server: roles, users, API tokens, dashboard sessions and external JWTs."""
