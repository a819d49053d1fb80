-- The security questions drawn for each user, kept for a while (an hour, or the lockout
-- window if longer, from the last sign-in that asked them) so that signing in again asks
-- the same questions instead of drawing until an attacker gets the ones they know.
CREATE TABLE security_question_draws (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    question_ids TEXT NOT NULL,
    drawn_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Settings have tighter limits from this version on: a stored value above its limit would
-- stop every node reading the settings, so it is lowered to the limit.
UPDATE settings SET value = '2', updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE key = 'oath_totp_window_steps' AND CAST(value AS INTEGER) > 2;
UPDATE settings SET value = '20', updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE key = 'oath_hotp_look_ahead' AND CAST(value AS INTEGER) > 20;
UPDATE settings SET value = '12', updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE key = 'session_max_hours' AND CAST(value AS INTEGER) > 12;
UPDATE settings SET value = '30', updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE key = 'session_idle_minutes' AND CAST(value AS INTEGER) > 30;
