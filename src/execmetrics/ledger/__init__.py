"""The MRR movement ledger: customer MRR over time, and the movements that change it."""
