-- EU Digital Identity Wallet (SPEC §12): OpenID4VP requests the broker made as verifier.

-- One presentation request: bound to the browser session that asked for it, its request object
-- served once, answered at most once (the wallet's direct_post.jwt), used once by that browser.
CREATE TABLE eudiw_requests (
    id TEXT PRIMARY KEY,                 -- in the request_uri and /eudiw/continue?r=
    key_id TEXT NOT NULL UNIQUE,         -- kid of the ephemeral encryption key (JWE header)
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    session_ref TEXT NOT NULL,           -- hash of the browser session id
    min_level TEXT NOT NULL,
    enc_key BYTEA NOT NULL,              -- the ephemeral ECDH-ES P-256 private key, encrypted under the master key
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    fetched_at BIGINT,                    -- the wallet fetched the request object
    answered_at BIGINT,
    result TEXT,                         -- JSON of the verified PID or of the refusal
    consumed_at BIGINT
);
