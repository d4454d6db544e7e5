"""Click glue: the root group, shared options, the error boundary, man pages."""
