-- A refresh token names the token it replaced (the rotation chain). On PostgreSQL the rotation
-- statement sets it (one data-modifying WITH); SQLite has a trigger for the same (its 0009).
ALTER TABLE tokens ADD COLUMN rotated_from TEXT;
