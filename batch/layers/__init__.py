"""The lake's layer jobs, Bronze -> Silver -> Gold: each a thin shell over batch.transforms that
reads and writes its own tables. They meet in batch.names and batch.archive_reads, never in each
other's modules; batch.flows puts them in order."""
