"""Link preview cards: fetched safely after the commit, cached per URL (docs/security.md)."""
