-- Photo-only posts: a post needs words or photos, not always words. Its media are attached
-- after the post row, in the same transaction, so "body or media" is checked on input
-- (posts/schemas.py) rather than by a CHECK, which cannot see the media table.
ALTER TABLE posts DROP CONSTRAINT posts_body_check;
