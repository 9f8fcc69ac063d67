"""Audit and regulation: the record of archive exports made for regulators."""
