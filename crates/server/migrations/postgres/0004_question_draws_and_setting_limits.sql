-- The security questions drawn for each user, kept for a while (an hour, or the lockout
-- window if longer, from the last sign-in that asked them) so that signing in again asks
-- the same questions instead of drawing until an attacker gets the ones they know.
CREATE TABLE security_question_draws (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    question_ids TEXT NOT NULL,
    drawn_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Settings have tighter limits from this version on: a stored value above its limit would
-- stop every node reading the settings, so it is lowered to the limit.
UPDATE settings SET value = limits.max::text, updated_at = EXTRACT(EPOCH FROM now())::BIGINT
    FROM (VALUES ('oath_totp_window_steps', 2), ('oath_hotp_look_ahead', 20),
                 ('session_max_hours', 12), ('session_idle_minutes', 30)) AS limits (key, max)
    WHERE settings.key = limits.key
      AND CASE WHEN settings.value ~ '^[0-9]+$' THEN settings.value::NUMERIC > limits.max
               ELSE FALSE END;
