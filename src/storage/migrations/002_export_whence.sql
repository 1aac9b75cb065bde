-- Where an export started reading (oldest | newest), fixed at creation and
-- shown by GET; the position itself lives in the offsets table.
ALTER TABLE exports ADD COLUMN whence TEXT NOT NULL DEFAULT 'oldest';
