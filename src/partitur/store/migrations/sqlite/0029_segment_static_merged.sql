-- Static-list memberships a merge moved to the surviving profile, kept so that an unmerge can
-- give them back: the merged-away profile's own rows, the survivor they went to, and whether
-- the survivor gained the membership by the merge (`gained` = 1) or already had it.
CREATE TABLE segment_static_merged (
    segment    TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    survivor   TEXT NOT NULL,
    since      BIGINT NOT NULL,
    gained     INTEGER NOT NULL,
    PRIMARY KEY (segment, profile_id)
);
CREATE INDEX segment_static_merged_survivor ON segment_static_merged (survivor);
