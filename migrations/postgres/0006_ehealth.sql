-- Software packages and APIs (SPEC §10): what a client may do besides the browser code flow.
-- A row exists only for clients registered with a certificate, resources, scopes or the
-- --introspect / --token-exchange flags; a client without one is a browser client as before.
CREATE TABLE client_api (
    client_id TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    grant_types TEXT NOT NULL,           -- JSON array: authorization_code, client_credentials
    certificate TEXT,                    -- PEM of the registered eHealth certificate (+ chain)
    certificate_sha256 TEXT,             -- its x5t#S256 (base64url SHA-256 of the DER)
    scopes TEXT NOT NULL,                -- JSON array: what client_credentials may grant
    resources TEXT NOT NULL,             -- JSON array of resource URIs (RFC 8707) → aud
    introspect INTEGER NOT NULL DEFAULT 0,
    token_exchange INTEGER NOT NULL DEFAULT 0
);
