"""Robustness: bad inputs, crashes and resumption, with nothing silently wrong or lost."""
