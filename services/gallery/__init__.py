"""The gallery service: HTML pages, JSON reads and download responses. It never writes."""
