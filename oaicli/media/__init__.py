"""Images, audio and embeddings: the engines behind their commands, and PNG checks."""
