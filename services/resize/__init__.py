"""The resize service: turns originals into their variants, (size, format) pairs
(shared/variants.py): tiny, large and monstrous while the upload waits, the rest in the
background."""
