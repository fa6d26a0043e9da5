-- Second factors other than TOTP: the paper token card's codes, one-time challenges (an SMS code
-- sent, a card position asked) and the outbox of messages (SMS, mail) to deliver.

CREATE TABLE token_codes (
    key_id TEXT NOT NULL REFERENCES keys(id),
    position BIGINT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (key_id, position)
);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- sms | token
    position BIGINT,
    code_hash TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,               -- sms | mail
    recipient TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox(sent_at, next_attempt_at);
