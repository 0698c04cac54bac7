"""Live conversion: audio converted block by block as it arrives (the Live tab, `voiceapp live`)."""
