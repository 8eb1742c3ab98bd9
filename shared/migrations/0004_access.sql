-- Who may upload, who sees what: upload keys, the key behind each upload, unlisted and
-- expiring images.
-- depends: 0001_images

-- A key is 256 random bits shown once by `kitteh keys create`; only its sha256 is kept
-- (a fast hash is right for a random secret of that size: there is nothing to brute-force).
CREATE TABLE upload_keys (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL UNIQUE CHECK (name <> ''),
    key_hash    bytea       NOT NULL UNIQUE,
    admin       boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

ALTER TABLE images
    ADD COLUMN key_id     bigint REFERENCES upload_keys (id) ON DELETE SET NULL,
    ADD COLUMN visibility text   NOT NULL DEFAULT 'public'
                                 CHECK (visibility IN ('public', 'unlisted')),
    ADD COLUMN expires_at timestamptz;

-- The expiry job looks only at images that expire.
CREATE INDEX images_expiring ON images (expires_at) WHERE expires_at IS NOT NULL;
-- The Newest grid and the list API walk public images, newest first.
CREATE INDEX images_public_newest ON images (id DESC) WHERE visibility = 'public';
