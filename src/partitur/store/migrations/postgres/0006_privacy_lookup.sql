-- Erasure and export find identity log entries by the identifier they name (a link another
-- profile was refused names the person's identifier under that profile's id).
CREATE INDEX identity_log_value ON identity_log (id_value);
-- A number that only grows (erasures hold the identity lock until they commit), so that each
-- server can load just the suppressions added since it last looked. SQLite has its rowid.
ALTER TABLE suppressions ADD COLUMN id BIGSERIAL;
CREATE INDEX suppressions_id ON suppressions (id);
-- Erasure and export gather every profile merged into a person's profile.
CREATE INDEX profiles_merged_into ON profiles (merged_into);
