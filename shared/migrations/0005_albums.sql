-- Albums: several pictures under one memorable name, with a page at /{Name}Album.
-- depends: 0004_access
--
-- An album has its own token (its name in lower case, as for images, unique among albums),
-- delete token, key, visibility and expiry. Its pictures stay images of their own: an album
-- only lists them, in order. `owned` records whether the album's maker proved they may delete
-- the picture (its delete token, its upload key or an admin key): only those go with
-- `DELETE /api/albums/{token}?images=1`.

CREATE TABLE albums (
    id                bigserial   PRIMARY KEY,
    token             text        NOT NULL UNIQUE,
    name              text        NOT NULL,
    title             text        CHECK (char_length(title) <= 200),
    delete_token_hash bytea       NOT NULL,
    key_id            bigint      REFERENCES upload_keys (id) ON DELETE SET NULL,
    visibility        text        NOT NULL DEFAULT 'public'
                                  CHECK (visibility IN ('public', 'unlisted')),
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE album_images (
    album_id  bigint  NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    image_id  bigint  NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position  integer NOT NULL,
    owned     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (album_id, image_id),
    UNIQUE (album_id, position)
);

-- The Newest grid hides a picture that is shown as part of an album tile.
CREATE INDEX album_images_image ON album_images (image_id);
-- The expiry job looks only at albums that expire.
CREATE INDEX albums_expiring ON albums (expires_at) WHERE expires_at IS NOT NULL;
