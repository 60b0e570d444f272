"""Alerts: rules on the KPI catalogue (threshold, change, seasonal anomaly), an inbox, delivery."""
