-- Traces (observability/tracing.py): the W3C `traceparent` of the request span that announced
-- a row, so the relay's batch span links to it (a batch serves many requests: links, not a
-- parent). Written only with tracing on; NULL otherwise, and for rows from before. A nullable
-- column without a default: added without rewriting the table.
ALTER TABLE outbox ADD COLUMN trace_context text;
