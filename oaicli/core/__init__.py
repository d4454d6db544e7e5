"""Settings, errors and exit codes, the invocation, default models: what every layer may use."""
