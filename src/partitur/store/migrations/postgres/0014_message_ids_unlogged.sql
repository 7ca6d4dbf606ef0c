-- De-duplication ids without write-ahead logging: claiming random ids in a B-tree was the
-- largest cost of an append (a full page image in the WAL for most of them). An unlogged table
-- is emptied by crash recovery and is not replicated, so its contents are rebuilt from the
-- event log whenever `dedup_state` (unlogged too, so emptied at the same moment) has no row:
-- see store/events.py, PostgresEventLog.
ALTER TABLE message_ids SET UNLOGGED;
CREATE UNLOGGED TABLE dedup_state (
    rebuilt_at BIGINT NOT NULL
);
INSERT INTO dedup_state (rebuilt_at) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM events);
