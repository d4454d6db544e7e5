"""oaicli: a command-line client for the OpenAI REST API."""

__version__ = "0.1.0"
