"""The upload service: accepts bytes, validates, names and records images, asks for variants."""
