-- The analytics projector looks for unmerges after its cursor every cycle; without this index
-- that read walked the whole identity log (which grows with every merge) once a second.
CREATE INDEX identity_log_unmerges ON identity_log (id) WHERE kind = 'unmerge';
