"""Public profiles and follows."""
