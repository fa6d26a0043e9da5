-- The login method and level a code was issued for, so that the audit row of its exchange
-- ("token issued": person, client, method, level) is written by the redemption's own statement
-- instead of one more write after it (BENCHMARKS.md, #18). NULL for codes issued before.
ALTER TABLE auth_codes ADD COLUMN method TEXT;
ALTER TABLE auth_codes ADD COLUMN acr TEXT;
