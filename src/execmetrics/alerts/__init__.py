"""Alert rules over KPI values: conditions, the alert state machine, escalation."""
