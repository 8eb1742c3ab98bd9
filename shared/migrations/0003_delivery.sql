-- Delivery: a variant is a (size, format) pair; two more sizes; a placeholder per image.
-- depends: 0001_images
--
-- Existing rows become the base format ('base': JPEG, PNG for alpha, WebP for WebP) of their
-- size, so nothing already served changes. Images uploaded before this have no rows for the
-- new pairs: the resize service's reconciler adds them (images.variant_plan < 2) and makes
-- the files in the background, with no downtime.

ALTER TABLE variants ADD COLUMN format text NOT NULL DEFAULT 'base'
    CHECK (format IN ('base', 'avif', 'webp'));
ALTER TABLE variants DROP CONSTRAINT variants_kind_check;
ALTER TABLE variants ADD CONSTRAINT variants_kind_check
    CHECK (kind IN ('tiny', 'large', 'monstrous', 'wide', 'huge'));
-- 'dropped': a modern file that came out larger than its base-format fallback. Not kept, not
-- served, never made again.
ALTER TABLE variants DROP CONSTRAINT variants_state_check;
ALTER TABLE variants ADD CONSTRAINT variants_state_check
    CHECK (state IN ('pending', 'working', 'ready', 'failed', 'dropped'));
ALTER TABLE variants DROP CONSTRAINT variants_pkey;
ALTER TABLE variants ADD PRIMARY KEY (image_id, kind, format);

DROP INDEX variants_unfinished;
CREATE INDEX variants_unfinished ON variants (updated_at) WHERE state NOT IN ('ready', 'dropped');

-- Which set of variant rows an image was given: 1 before this migration, 2 with it. The
-- default stays 1, so a row inserted by a service not yet upgraded is backfilled too; the
-- upload service of this version inserts 2 with all the rows.
ALTER TABLE images ADD COLUMN variant_plan integer NOT NULL DEFAULT 1;
CREATE INDEX images_old_variant_plan ON images (id) WHERE variant_plan < 2;

-- ThumbHash (https://evanw.github.io/thumbhash/) of the picture, ~25 bytes: pages draw it
-- while the picture loads. Made with the first variants; NULL until then.
ALTER TABLE images ADD COLUMN thumbhash bytea;
