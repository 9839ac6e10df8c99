"""SaaS metrics per period, computed from the MRR movement ledger (docs/metrics.md)."""
