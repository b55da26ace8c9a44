-- Every attempt of a webhook delivery, not only the last: its number (1 for the first, counting on
-- across redeliveries), how it ended, the receiver's status code or why there was none, and when.
-- A delivery keeps its newest attempts only (the statement that records one prunes the older), and
-- they go with the delivery when the endpoint's log is pruned or the endpoint deleted.
CREATE TABLE IF NOT EXISTS webhook_delivery_attempts (
  delivery_id uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  status text NOT NULL,
  response_status integer,
  error text,
  attempted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (delivery_id, attempt),
  CONSTRAINT webhook_delivery_attempts_status_check CHECK (status IN ('retrying', 'delivered', 'failed'))
);
--> statement-breakpoint
-- The deliveries logged before: their last attempt is all that was kept.
INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status, response_status, error, attempted_at)
SELECT id, attempts, status, response_status, last_error, last_attempt_at
FROM webhook_deliveries
WHERE attempts > 0 AND last_attempt_at IS NOT NULL AND status IN ('retrying', 'delivered', 'failed')
ON CONFLICT DO NOTHING;
