-- The console's audit log filters (each with the sequence number, for newest-first pages)
-- and its reports (one action over a range of days).
CREATE INDEX audit_log_actor ON audit_log(actor, id);
-- (subject, id) is indexed by 0011_user_search, for a user's recent events.
CREATE INDEX audit_log_action ON audit_log(action, id);
CREATE INDEX audit_log_action_at ON audit_log(action, at);
