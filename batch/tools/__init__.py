"""Tools beside the lake's layers: the audit against MySQL, compaction and vacuum, freshness as a
reader sees it, and the marts' report. Each reads what the layers wrote; no layer imports them."""
