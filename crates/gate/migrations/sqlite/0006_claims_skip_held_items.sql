-- A claim walks the queue in due order and used to step over every item on a live lease
-- (laptops out in the field hold thousands for days) on every claim. Unleased items and
-- lapsed leases now have an index each, and a claim reads from both.
CREATE INDEX items_unleased ON items (queue, status, due_at, received_at) WHERE active_lease_id IS NULL;
CREATE INDEX items_lease_ends ON items (lease_expires_at) WHERE active_lease_id IS NOT NULL;
