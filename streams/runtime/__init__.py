"""The machinery under the agents: Faust's consumer, producer, table writes and app, changed
where the stream's guarantees or its speed needed it, plus the pieces they feed (the feed,
the state cache, the reference reader, the metrics, web access), and the commit protocol
(commit_protocol.py) that orders what the consumer, the feed, the state cache and the changelog
table do before an offset is committed.

Proven with faust-streaming 0.15.3 and aiokafka 0.14.0 (`app.PROVEN_FAUST`; a worker warns at
start on any other Faust). Every private Faust, mode or aiokafka name the project uses is used
here and listed once below, with the upstream issue where one exists and how to tell, after an
upgrade, whether the change is still needed (`tests/unit/test_runtime_boundary.py` keeps this
list and docs/architecture.md's complete, and such names out of every other package).

consumer.py: every record of a partition delivered once, in order, from its committed offset
- `Consumer._drain_messages` (the fetch loop, replaced), `Consumer._read_offset`,
  `Consumer._add_gap`, `Consumer._commit_every`, `Consumer._n_acked`, `Consumer._stopped`:
  Faust's read offsets drop records a seek went back for and mark "holes" done
  (faust-streaming/faust#216, #312, #606). Still needed while
  `tests/unit/test_no_skip_consumer.py::test_faust_alone_would_commit_past_the_records_it_never_delivered`
  passes and the fault suite's scale test loses records on Faust's own loop.
- `Consumer._wait_next_records`, `Consumer._to_message`, `Consumer._buffered_partitions`:
  `getmany`'s parts, called by the replaced loop so that a partition's run of next records goes
  to the feed in one put, not one async-generator step, gate check and delivery each. No
  upstream issue (a cost): check with `tests/unit/test_no_skip_consumer.py` and
  `python -m bench.stream --against` after an upgrade.
- `Consumer._new_offset`, `Consumer._committed_offset`, `Consumer._acked`,
  `Consumer._acked_index`, `Consumer._unacked_messages`: the commit floor (a commit never
  passes the record at the committed offset, nothing between a revoke and the seek;
  faust-streaming/faust#318) and the stuck-partition checks. Check with the same tests.
- `Consumer._get_active_partitions`, `Consumer._paused_partitions`: read, never changed, to
  say what holds a starved partition back (starvation.py: assigned, records waiting, none
  delivered). No upstream issue (a diagnosis): check with `tests/unit/test_no_skip_consumer.py`.
- `Conductor._tp_index`: direct delivery only while every receiving stream buffer has room.
  No upstream issue (Faust's per-record `wait_first` is a cost, not a bug): drop it if Faust's
  conductor stops wrapping each delivery, measured with `python -m bench.stream --against`.
- `Consumer._new_consumer_thread`, `AIOKafkaConsumerThread._create_worker_consumer`, aiokafka's
  `AIOKafkaConsumer._fetch_max_wait_ms`: Faust fixes the broker's wait for an empty fetch at
  1,500 ms (no upstream issue found). Still needed while Faust's aiokafka driver passes that
  constant; `python -m bench.profile --workers 2 --idle` shows the agent waiting on an empty
  feed without it.

producer.py: a roomier send buffer, and no blind resend of the exactly-once outputs
- `Producer._producer_type`, aiokafka's `AIOKafkaProducer._sender`, `Sender._send_produce_req`,
  `Sender._acks`, `Sender._retry_backoff`, `Sender._request_timeout_ms`,
  `Sender._message_accumulator`, `Sender._in_flight`, `Sender._muted_partitions`,
  `SendProduceReqHandler._can_retry`: aiokafka resends a batch whose request got no answer,
  which the broker may have written (aio-libs/aiokafka#197: the maintainers' answer is the
  idempotent producer, whose retries have no deadline). Check with
  `tests/unit/test_once_only_producer.py` and the fault suite's broker restart.
- `MessageBatch._ctime`: a batch's age, so an output batch is never sent once its claim could
  have gone stale (aiokafka sends a batch until its request timeout after creation, and holds
  one for a leader whose connection is down without a deadline; aiokafka has no delivery
  timeout: aio-libs/aiokafka#197). Check with `tests/unit/test_once_only_producer.py`.
- `Producer._ensure_producer` (`raw_producer`, the one way to it): aiokafka's producer under
  Faust's, for order_final sends, changelog batches and metadata. Needed while Faust's
  `Topic.send` costs a FutureMessage and callbacks per record (`bench.stream --against`).
- `ProducerBuffer.max_messages` (public, but an internal bound): "producer buffer full"
  stalls at 100 queued changelog records (faust-streaming/faust#173).

changelog_table.py: the order table written a flush at a time
- `Collection._on_changelog_sent`, `PartitionAssignor._assignment`: persisted offsets only for
  partitions still owned; the assignment read once per rebalance. No upstream issue filed;
  check with the fault suite's kill and scale tests.
- `Store._db_for_partition`, `Store._dbs`, `Store._encode_key`: one-read gets, WriteBatch puts
  and key estimates on a partition's RocksDB, and the memory of the open ones; keys encoded
  as Faust does (`tests/unit/test_changelog_table.py`).
- `Collection._new_store_by_url`: the table's store gets the worker's RocksDB budget
  (rocksdb_budget.py) before it opens a partition; Faust builds a block cache and memtables
  per partition from the table's options and has no hook for shared ones. Check with
  `tests/unit/test_rocksdb_budget.py`.

order_pipe_app.py: `App._on_autodiscovery_error`: a module that fails to import stops the worker instead
of a worker that consumes nothing (faust-streaming/faust#269).

web_access.py: `Router._route_req`: a table view's request, headers and token with it, forwarded
only to an owner at a trusted host (no upstream issue: Faust trusts every announced address).
Check with `tests/unit/test_web_access.py` after an upgrade.

reference_reader.py: aiokafka's `AIOKafkaConsumer._client` (`force_metadata_update`): a
reference topic created after the reader started is found without waiting for the metadata's
maximum age (`tests/integration/test_reference_reader.py`).

Public names the runtime leans on as internals, for the same check after an upgrade:
`Consumer.ack`, `perform_seek`, `seek_wait` (a seek in the consumer's thread: why, in
`NoSkipConsumer.perform_seek`), `track_message`, `callback`, `Message.tracked`,
`Message.generation_id`, `App.consumer_generation_id`, `App.create_event`, mode's
`FlowControlEvent.manage_queue` and its `clear`, `Monitor.tp_read_offsets`,
`ProducerBuffer.size` and `pending`.
"""
