"""The one-command offline demo: make material, train a small voice model, convert, speak, report."""
