-- The task lane of a session (the questions and actions the engineer works through beside the
-- chat), kept on the server so it survives navigation: its items with their answers and done
-- marks, and whether the lane is collapsed.
ALTER TABLE chat_sessions ADD COLUMN pending_task_lane jsonb;
