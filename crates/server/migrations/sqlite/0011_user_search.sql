-- The admin console's list of users walks users in username order (the unique index on
-- username) and keeps those in a state: these partial indexes give each filter its own
-- short walk, in the same order, over 100,000 users.
CREATE INDEX users_not_enrolled ON users(username) WHERE enrolled_at IS NULL;
CREATE INDEX users_disabled ON users(username) WHERE enabled = 0;
CREATE INDEX users_fraud_blocked ON users(fraud_blocked_until) WHERE fraud_blocked_until IS NOT NULL;
CREATE INDEX lockouts_locked ON lockouts(username) WHERE hard_locked_at IS NOT NULL OR locked_until IS NOT NULL;
CREATE INDEX bypasses_unused ON bypasses(user_id, expires_at) WHERE used_at IS NULL;
-- A user's page shows their newest audit events.
CREATE INDEX audit_log_subject ON audit_log(subject, id);
