"""Vocal melody extraction: JDC input features, pitch classes and decoding."""
