"""The lake's Delta tables as the Spark jobs read and write them: the files under a table
(`files`), its log (`delta_log`), reads (`reads`), writes (`writes`) and the jobs' marks
(`marks`). Where each table lives is `batch.paths`; the fast lane's own reads and writes are
`batch.fastlane.delta`."""
