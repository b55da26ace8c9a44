-- A refresh token remembers the client it was issued to (a SHA-256 of its user agent and IP) and,
-- once rotated, the token issued in its place: a just-rotated token presented again by the same
-- client within the reuse grace gets a new pair in its family (its successor retired), instead of
-- revoking the family. Tokens issued before have no client and never get the grace.
ALTER TABLE refresh_tokens ADD COLUMN client_hash text, ADD COLUMN replaced_by uuid;
