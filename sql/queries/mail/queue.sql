-- The mail queue (nubo_backend/mail): written in the requesting transaction, drained by the sender.

-- name: enqueue(recipient, subject, text_body, html_body)!
INSERT INTO mail_queue (recipient, subject, text_body, html_body)
VALUES (:recipient, :subject, :text_body, :html_body);

-- name: claim_due(lim, lease_seconds)
-- Take up to lim due mails and push their next attempt a lease away, so that no other
-- sender takes them meanwhile; a sender that dies mid-send leaves them to be retried.
UPDATE mail_queue SET attempts = attempts + 1,
                      next_attempt_at = now() + make_interval(secs => :lease_seconds)
WHERE id IN (
    SELECT id FROM mail_queue WHERE next_attempt_at <= now()
    ORDER BY next_attempt_at, id LIMIT :lim FOR UPDATE SKIP LOCKED
)
RETURNING id, recipient, subject, text_body, html_body, attempts;

-- name: delivered(id)!
DELETE FROM mail_queue WHERE id = :id;

-- name: retry_later(id, delay_seconds, error)!
UPDATE mail_queue SET next_attempt_at = now() + make_interval(secs => :delay_seconds), last_error = :error
WHERE id = :id;

-- name: seconds_to_next_due()$
-- How long until the earliest mail is due (NULL: none waits), so the sender sleeps just that long.
SELECT greatest(extract(epoch FROM min(next_attempt_at) - now()), 0)::float FROM mail_queue;
