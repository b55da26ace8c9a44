-- The owner's thumbs up or down on an assistant answer, with an optional comment. One rating per
-- answer (a session has one owner): rating again replaces it. Deleting the session deletes it.
ALTER TABLE chat_messages ADD COLUMN rating text CHECK (rating IN ('up', 'down'));
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN rating_comment text;
--> statement-breakpoint
ALTER TABLE chat_messages ADD COLUMN rated_at timestamptz;
