-- Erasure and export find identity log entries by the identifier they name (a link another
-- profile was refused names the person's identifier under that profile's id).
CREATE INDEX identity_log_value ON identity_log (id_value);
-- Each server loads just the suppressions added since it last looked, by rowid (only grows:
-- suppressions are never deleted); PostgreSQL gets an id column for the same purpose.
-- Erasure and export gather every profile merged into a person's profile.
CREATE INDEX profiles_merged_into ON profiles (merged_into);
