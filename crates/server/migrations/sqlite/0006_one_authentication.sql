-- Portal sign-ins, step-ups and the SDK's authentications are one kind of record, moved by
-- the engine's state machine. `origin` is portal, step_up or sdk; `started_by` names who may
-- read it (the SDK account, or the portal); `channel` the phone or device it went to;
-- `consumed_at` when an approved one signed a session in (it does so once).
ALTER TABLE authentications ADD COLUMN origin TEXT NOT NULL DEFAULT 'sdk';
ALTER TABLE authentications ADD COLUMN started_by TEXT NOT NULL DEFAULT '';
ALTER TABLE authentications ADD COLUMN channel TEXT;
ALTER TABLE authentications ADD COLUMN consumed_at INTEGER;
