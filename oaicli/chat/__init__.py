"""The chat engine: one turn, streamed display, stdin reading, the interactive loop."""
