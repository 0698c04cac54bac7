"""Dataset preparation: slicing recordings into training clips, with a report."""
