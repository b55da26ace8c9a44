-- An HTTP tool credential is bound to the origins given when it was stored: it is never sent to
-- any other. Credentials stored before carry no origins (null): a flow naming one is refused at save
-- and its calls send nothing, until its owner stores it again with its origins and its secret.
ALTER TABLE http_credentials ADD COLUMN IF NOT EXISTS origins text[];
