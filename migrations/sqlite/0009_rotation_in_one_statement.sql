-- A refresh token names the token it replaced (the rotation chain, also useful to an auditor).
-- Inserting a successor marks its predecessor rotated in the same statement (this trigger), so
-- that a rotation is one statement on the one SQLite writer instead of a transaction of four
-- round trips (BEGIN, UPDATE, INSERT, COMMIT): BENCHMARKS.md, #18. The statement selects the
-- predecessor only while it is live, and SQLite runs it atomically, so two concurrent uses of a
-- refresh token still yield one successor.
ALTER TABLE tokens ADD COLUMN rotated_from TEXT;

CREATE TRIGGER tokens_rotation AFTER INSERT ON tokens WHEN NEW.rotated_from IS NOT NULL
BEGIN
    UPDATE tokens SET rotated_at = NEW.created_at
    WHERE id = NEW.rotated_from AND rotated_at IS NULL;
END;
