-- Registration offices (SPEC §7): operators, and the registrations they make. A registration
-- carries the activation code (on paper) and the activation link (by mail), both stored only
-- as hashes, both expiring after 14 days, both used once.

CREATE TABLE operators (
    person_id TEXT PRIMARY KEY REFERENCES persons(id),
    office TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE registrations (
    id TEXT PRIMARY KEY,
    office TEXT NOT NULL,
    operator_id TEXT NOT NULL,           -- person id of the operator who registered (or re-issued)
    insz TEXT,                           -- NULL while a Bis number is requested
    person_id TEXT,
    bis_request_id TEXT,
    family_name TEXT NOT NULL,
    given_names TEXT NOT NULL,
    birthdate TEXT NOT NULL,
    nationality TEXT NOT NULL,
    document_type TEXT NOT NULL,
    document_hint TEXT NOT NULL,         -- the document number's last characters only
    email TEXT NOT NULL,
    mobile TEXT NOT NULL,
    lang TEXT NOT NULL,
    status TEXT NOT NULL,                -- awaiting_bis | issued | opened | locked | activated | voided
    code_hash TEXT,
    link_hash TEXT UNIQUE,
    failures INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    opened_at INTEGER,
    activated_at INTEGER
);
CREATE INDEX registrations_office ON registrations(office, created_at);
CREATE INDEX registrations_insz ON registrations(insz);
