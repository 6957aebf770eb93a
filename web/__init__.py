"""The worker's web pages that are not views of a table: /stats and the live dashboard."""
