-- A release's document is the data of its `released` log entry, byte for byte; consumers are
-- served from the entry, so the second copy in releases.body goes (it was a third of what an
-- automatic release wrote).
ALTER TABLE releases DROP COLUMN body;

-- Entries without an item (outputs released at once, admin events) are never looked up by item.
DROP INDEX log_entries_by_item;
CREATE INDEX log_entries_by_item ON log_entries (item_id) WHERE item_id IS NOT NULL;
