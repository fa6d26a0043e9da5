-- Sessions across apps (SPEC §11): what people see of an app and where it hears about
-- logouts, and the broker session (OIDC `sid`) each grant was issued in.

-- Kept beside `clients` (one row per client that has any of these set).
CREATE TABLE client_apps (
    client_id TEXT PRIMARY KEY,
    name TEXT,                           -- shown to people (`--name`)
    backchannel_logout_uri TEXT,         -- OIDC Back-Channel Logout 1.0
    dpop_required INTEGER NOT NULL DEFAULT 0
);

-- Written when a code is issued (its grant id is fixed then); the grant row appears when the
-- code is redeemed.
CREATE TABLE grant_sessions (
    grant_id TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    person_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX grant_sessions_sid ON grant_sessions(sid);
CREATE INDEX grant_sessions_person ON grant_sessions(person_id, client_id);

-- DPoP (RFC 9449): what a token is bound to, the RFC 7638 thumbprint of the proof's key. The
-- key is `at:<access token hash>` for an access token, `grant:<id>` for a grant's refresh
-- tokens (public clients).
CREATE TABLE dpop_bindings (
    key TEXT PRIMARY KEY,
    jkt TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
