"""The resize service: turns originals into the tiny, large and monstrous variants."""
