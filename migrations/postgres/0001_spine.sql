-- The spine: persons, digital-key accounts, OIDC clients, keys, sessions, codes and tokens.
-- Times are unix seconds (INTEGER) so the same queries run on SQLite and PostgreSQL.

CREATE TABLE persons (
    id TEXT PRIMARY KEY,                 -- the opaque, stable `sub`
    insz TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    birthdate TEXT,                      -- YYYY-MM-DD
    created_at BIGINT NOT NULL
);

-- External identities linked to a person: (provider, subject), SPEC §2.
CREATE TABLE identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);

-- A digital-key account: one username and password per person; keys hang off it.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL UNIQUE REFERENCES persons(id),
    username TEXT NOT NULL UNIQUE,       -- lower-cased
    password_hash TEXT NOT NULL,         -- argon2id PHC string
    created_at BIGINT NOT NULL
);

CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,                  -- totp | sms | token | webauthn
    status TEXT NOT NULL,                -- pending | active | revoked
    secret_enc BYTEA,                     -- AES-256-GCM under the master key
    phone TEXT,
    data TEXT,                           -- kind-specific JSON (e.g. a WebAuthn credential)
    last_step BIGINT NOT NULL DEFAULT 0,-- TOTP: highest time step accepted (replay guard)
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX keys_account ON keys(account_id);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    secret_hash TEXT,                    -- SHA-256 of a 256-bit secret; NULL for public clients
    redirect_uris TEXT NOT NULL,         -- JSON array
    post_logout_redirect_uris TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    jwks TEXT,
    jwks_uri TEXT,
    id_token_alg TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_enc BYTEA NOT NULL,           -- PKCS#8, AES-256-GCM under the master key
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT                   -- still published until its tokens expire
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    data TEXT NOT NULL,                  -- JSON: pending request, login, key-login step
    person_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- Authorization requests waiting for a login (also pushed requests, PAR).
CREATE TABLE pending_auth (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,                -- JSON of the validated request
    pushed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    details TEXT NOT NULL,               -- JSON: scope, nonce, auth_time, acr, amr, ...
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- A grant is the family of tokens one code exchange started; revoking it revokes them all.
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    details TEXT NOT NULL,               -- JSON: scope, auth_time, acr, amr, ...
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_person ON grants(person_id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    access_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT UNIQUE,
    access_expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,                  -- the refresh token was exchanged for a new one
    revoked_at BIGINT
);
CREATE INDEX tokens_grant ON tokens(grant_id);

-- Failure counters and locks, shared by every replica.
CREATE TABLE throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- One-time values seen once (client-assertion jti, later SAML assertion IDs).
CREATE TABLE seen_once (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    person_id TEXT,
    client_id TEXT,
    method TEXT,
    acr TEXT,
    address TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_person ON audit(person_id, at);
CREATE INDEX audit_at ON audit(at);
