"""Posts, comments, likes and the feed."""
