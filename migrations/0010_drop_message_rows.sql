-- Custos store, schema 10: the message and participant rows of schema 1–8 are gone; each
-- conversation's document (schema 9) holds them, byte for byte as their evidence hash covers.
-- conversations.extra went into the document too.
DROP TABLE messages;
DROP TABLE participants;
ALTER TABLE conversations DROP COLUMN extra;
