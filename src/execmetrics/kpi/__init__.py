"""KPIs: named, versioned definitions over the revenue engine's metrics, with targets."""
