"""Voiceapp: a local voice-cloning studio (RVC) as a library, a CLI and a Gradio app."""

__version__ = "0.1.0"
