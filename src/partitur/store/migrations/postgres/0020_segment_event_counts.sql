-- How many events of a name each person has (all time), for segment conditions without a
-- window or property filter. A row is complete or absent: the profile worker adds to rows that
-- exist and builds a missing one from the timeline the first time a segment needs it; merges
-- and unmerges drop the rows of the profiles they rebuild. last_ts is the newest event's time
-- (NULL when n is 0), so that events dated in the future are not counted before their time.
CREATE TABLE segment_event_counts (
    profile_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    n           BIGINT NOT NULL,
    last_ts     BIGINT,
    PRIMARY KEY (profile_id, event)
);
