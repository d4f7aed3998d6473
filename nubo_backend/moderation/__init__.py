"""Reports on users and content, and what moderators do about them (docs/moderation.md)."""
