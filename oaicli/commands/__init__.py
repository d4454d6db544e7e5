"""One module per API resource; each exports a Click group or command named after it."""
