-- HDR photos (issue 19): the original keeps a gain map (an Ultra HDR JPEG), so its JPEG
-- variants are Ultra HDR too and the image page offers them to HDR screens first.
-- depends: 0006_variant_notify

ALTER TABLE images ADD COLUMN gain_map boolean NOT NULL DEFAULT false;
