-- Service accounts of the Web Service SDK: the secret is 256 random bits, kept as SHA-256.
CREATE TABLE service_accounts (
    name TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Authentications started through the SDK, so that any node can answer a poll.
CREATE TABLE authentications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    state TEXT NOT NULL,
    next TEXT,
    asked TEXT,
    via TEXT,
    reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    client_ip TEXT,
    context TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX authentications_expires_at ON authentications(expires_at);
