"""The reference experiments E0-E2 as they were run."""
