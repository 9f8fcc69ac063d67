"""Read models of the channels context (channel anomaly alerts)."""
