"""Order ingestion plumbing: push signatures and push envelopes (signatures.py), and the
platforms' order detail APIs for pushes that carry only an order id (fetchers.py)."""
