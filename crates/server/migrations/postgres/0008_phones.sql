-- Phone calls and text messages. A user's primary phone (`phone`, E.164) gets an extension
-- dialled once the call is answered, and a backup phone; a fraud report blocks the user
-- until `fraud_blocked_until`. An authentication that went to a phone keeps the provider's
-- id for the call or message and, for a text's code, its keyed hash.
ALTER TABLE users ADD COLUMN extension TEXT;
ALTER TABLE users ADD COLUMN backup_phone TEXT;
ALTER TABLE users ADD COLUMN backup_extension TEXT;
ALTER TABLE users ADD COLUMN fraud_blocked_until BIGINT;
ALTER TABLE authentications ADD COLUMN message_id TEXT;
ALTER TABLE authentications ADD COLUMN code_hash TEXT;
CREATE INDEX authentications_message_id ON authentications(message_id);
CREATE INDEX authentications_channel ON authentications(channel, state);

-- Every call and text sent, for the hourly limits per number, user, address and in all
-- (SMS pumping and toll fraud): shared by every node.
CREATE TABLE phone_sends (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    number TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_ip TEXT
);
CREATE INDEX phone_sends_at ON phone_sends(at);
CREATE INDEX phone_sends_number ON phone_sends(number, at);
CREATE INDEX phone_sends_user ON phone_sends(user_id, at);
CREATE INDEX phone_sends_client_ip ON phone_sends(client_ip, at);

-- Provider webhooks already taken: a replayed one (same address, same parameters) is
-- refused.
CREATE TABLE webhook_receipts (
    key TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX webhook_receipts_received_at ON webhook_receipts(received_at);
