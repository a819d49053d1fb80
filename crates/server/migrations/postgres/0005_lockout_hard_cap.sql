-- Consecutive failures, cleared only by a success or an administrator; at the hard cap
-- (`lockout_hard_cap`) the username stays locked until `twofold user unlock`.
ALTER TABLE lockouts ADD COLUMN consecutive BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lockouts ADD COLUMN hard_locked_at BIGINT;

-- `lockout_threshold` may no longer exceed the hard cap (at most 100): a stored value above
-- it would stop every start, so it is lowered to 100.
UPDATE settings SET value = '100'
WHERE key = 'lockout_threshold'
  AND CASE WHEN value ~ '^[0-9]+$' THEN CAST(value AS NUMERIC) > 100 ELSE false END;
