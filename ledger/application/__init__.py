"""The application layer: commands in, events saved, results out (no HTTP here)."""
