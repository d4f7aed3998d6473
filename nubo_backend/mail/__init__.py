"""Mail: a durable queue in PostgreSQL, written in the requesting transaction, and a sender
that delivers it over SMTP after the commit, with retries and backoff (docs/accounts.md).

Domains call `queue.enqueue` inside their transaction with a `templates.render`ed mail;
nothing in a request ever talks to the SMTP server."""
