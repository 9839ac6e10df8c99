"""Analytics over metric and KPI series."""
