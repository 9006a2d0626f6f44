"""Identity resolution (OneID)."""
