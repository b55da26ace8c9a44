-- A user message has at most one assistant answer: a turn re-run after its worker died, or ended
-- twice, finds the stored answer instead of writing a second (the insert's ON CONFLICT). The index
-- also finds a message's answer directly (turn start, liveness checks) instead of scanning its session.
-- Only a race the run's end already excludes could have left two; the later ones are dropped first.
DELETE FROM chat_messages later
  USING chat_messages first
  WHERE later.role = 'assistant' AND first.role = 'assistant'
    AND later.reply_to = first.reply_to AND later.seq > first.seq;
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_one_answer_idx ON chat_messages (reply_to) WHERE role = 'assistant';
