"""Voice conversion: the RVC inference pipeline and its CLI."""
