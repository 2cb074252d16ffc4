-- changed_by: who made a registry change through the API — the name of the caller's token entry
-- (CHAINOTEL_AUTH_FILE), 'unauthenticated' when authentication is off, '' for catalog seeds and
-- rows written before this column existed.
ALTER TABLE chain_definitions{on_cluster} ADD COLUMN IF NOT EXISTS changed_by String DEFAULT '' AFTER updated_at;
