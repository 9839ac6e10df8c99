"""Ingestion of customers, subscription events, fx rates and marketing spend."""
