-- A Belgian eID card login: started by the broker for a browser session, answered by the eID
-- listener after it verified the card certificate, taken once by that same session.
CREATE TABLE eid_requests (
    id TEXT PRIMARY KEY,
    session_ref TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ticket_hash TEXT,
    result TEXT,
    used_at INTEGER
);
