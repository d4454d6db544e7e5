"""The envelope engine (sans-I/O), its stdio runner and its HTTP server (http/)."""
