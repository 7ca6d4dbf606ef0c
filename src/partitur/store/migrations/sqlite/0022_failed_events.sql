-- Events the profile worker could not process (an error of the event itself, not of the store):
-- taken out of the queue after repeated failures so the rest goes on; replayable.
CREATE TABLE failed_events (
    seq        BIGINT PRIMARY KEY,
    part       INTEGER NOT NULL,
    failed_at  BIGINT NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT NOT NULL
);
