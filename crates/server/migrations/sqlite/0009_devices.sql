-- The authenticator app. A device is activated with a one-time code (kept as a keyed hash)
-- and signs its requests with its own key (sealed, with its UnifiedPush endpoint: the row
-- id is the seal's associated data). Each request sent to a user's devices carries the
-- number to match and a nonce; an answer is taken once. Nonces of signed requests are kept
-- for ten minutes so that none is taken twice, on any node. The server signs its answers
-- with its own key, the same on every node.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    token_id TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE activation_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX activation_codes_user ON activation_codes(user_id);

CREATE TABLE push_requests (
    id TEXT PRIMARY KEY,
    authentication_id TEXT NOT NULL REFERENCES authentications(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    choices TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    answer TEXT,
    device_id TEXT
);
CREATE INDEX push_requests_user ON push_requests(user_id, expires_at);
CREATE INDEX push_requests_created_at ON push_requests(created_at);
CREATE INDEX push_requests_authentication ON push_requests(authentication_id);

CREATE TABLE device_nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX device_nonces_seen_at ON device_nonces(seen_at);

CREATE TABLE app_server_keys (
    id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
