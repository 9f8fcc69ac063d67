"""Order ingestion plumbing: push signatures and push envelopes (signatures.py)."""
