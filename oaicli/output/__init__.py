"""The only place that decides a format: writers, progress bars, atomic files, prompts."""
