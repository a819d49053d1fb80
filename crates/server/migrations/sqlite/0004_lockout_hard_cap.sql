-- Consecutive failures, cleared only by a success or an administrator; at the hard cap
-- (`lockout_hard_cap`) the username stays locked until `twofold user unlock`.
ALTER TABLE lockouts ADD COLUMN consecutive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lockouts ADD COLUMN hard_locked_at INTEGER;
