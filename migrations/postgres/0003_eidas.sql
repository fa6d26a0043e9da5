-- eIDAS: the SP's key material, pending SAML requests, Bis requests.

-- Named secrets shared by every replica (e.g. the SAML SP keys), encrypted under the master key.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value_enc BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- An AuthnRequest sent to the eIDAS node: bound to the browser session that sent it and to the
-- RelayState, answered at most once.
CREATE TABLE saml_requests (
    id TEXT PRIMARY KEY,                 -- the AuthnRequest ID (InResponseTo)
    relay TEXT NOT NULL UNIQUE,          -- RelayState (random)
    session_ref TEXT NOT NULL,           -- hash of the browser session id
    min_level TEXT NOT NULL,
    country TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    result TEXT,                         -- JSON of the validated assertion or of the failure
    consumed_at BIGINT
);

-- "I have no Bis number": a request for one, with the eIDAS data and where to reach the person.
CREATE TABLE bis_requests (
    id TEXT PRIMARY KEY,
    person_identifier TEXT NOT NULL,
    family_name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    birthdate TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
