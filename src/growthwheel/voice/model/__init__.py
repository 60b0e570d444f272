"""The trained sentiment models (``sentiment_<lang>.npz``), written by ``growthwheel.voice.train``."""
