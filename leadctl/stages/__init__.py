"""Rule-driven stages: tag, score, route."""
