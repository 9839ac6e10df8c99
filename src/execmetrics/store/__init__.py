"""Storage: tables, migrations and database connections."""
