"""Channel anomaly alerts (渠道异常预警): thresholds, detected bursts, their handling."""
