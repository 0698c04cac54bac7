"""Sentences the demo speaks with eSpeak NG (written for this project)."""

# The source when no real speaker is installed (see material.py): converted into the target voice.
SOURCE_SENTENCES: tuple[str, ...] = (
    "Good evening, and welcome to this short demonstration of voice conversion.",
    "Every word you hear now was spoken by one voice and rebuilt in another.",
)

# Typed text, spoken by eSpeak NG and converted into the quick voice.
TTS_SENTENCE = "This sentence was typed as text, spoken by the computer, and converted into the trained voice."
