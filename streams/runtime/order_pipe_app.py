"""`OrderPipeApp`: faust.App with the runtime's consumer and producer, the completion agent's
feed, the output topics' readiness and the start-up rules."""

from __future__ import annotations

import asyncio
import gc
import ssl
import logging
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata

import faust
from mode.utils.imports import symbol_by_name

from streams.runtime.consumer import NoSkipConsumer
from streams.runtime.feed import Feed
from streams.runtime.producer import BatchingProducer
from streams.runtime.web_access import check_bind, web_token

# The runtime reaches into Faust's internals (listed in streams/runtime/__init__.py); it was
# proven with this release.
PROVEN_FAUST = "0.15.3"


def faust_version_warning(installed: str) -> str | None:
    """What to say when the installed faust-streaming is not the release the runtime was proven with."""
    if installed == PROVEN_FAUST:
        return None
    return (f"faust-streaming {installed} is installed; the stream's runtime was proven with {PROVEN_FAUST}. "
            "Run the fault suite before trusting it (make test PYTEST_ARGS='-m faults', and FAULT_SUITE=long).")


warning = faust_version_warning(metadata.version("faust-streaming"))
if warning:
    logging.getLogger(__name__).warning(warning)


# CPython's default collector passes (the youngest generation every 700 objects allocated
# net) suit short scripts. A busy worker keeps a batch's records, states and futures alive
# across many such passes: promoted to the oldest generation, they set off full passes over
# the whole heap again and again. Passes this far apart still collect every cycle.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)


def tune_collector() -> None:
    """Set the worker's garbage collector thresholds (COLLECTOR_THRESHOLDS)."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def freeze_start_up_heap() -> int:
    """Everything alive once the worker has started (modules, Faust's machinery, the
    reference data read so far) lives as long as the process: moved out of the collector's
    generations, no full pass walks it again (gc.freeze). Returns how many objects were
    frozen: counting them walks them all, so it is done once, here."""
    gc.freeze()
    return gc.get_freeze_count()


def collector_stats(frozen: int) -> dict:
    """The collector as /stats reports it: thresholds, the objects `frozen` at start, full passes so far."""
    return {"thresholds": list(gc.get_threshold()), "frozen": frozen,
            "full_passes": gc.get_stats()[2]["collections"]}


# sysexits.h's EX_CONFIG: a worker that cannot run as configured; a supervisor restarting it
# would only meet the same refusal.
EXIT_MISCONFIGURED = 78


def broker_credentials(login: tuple[str, str] | None, mechanism: str,
                       ssl_context: ssl.SSLContext | None = None) -> faust.SASLCredentials | None:
    """Faust's SASL credentials for a (user, password), over TLS with `ssl_context`; or None: PLAINTEXT."""
    if not login:
        return None
    return faust.SASLCredentials(username=login[0], password=login[1], mechanism=mechanism, ssl_context=ssl_context)


class StartRefused(Exception):
    """A start-up step found that the worker cannot run as configured (its credentials refused,
    say). The worker stops with this one line, which names the setting to fix."""


@dataclass
class OutputReadiness:
    """The topics the app writes to, as its start found them: `ready` once every partition has a
    leader (a send before that can stall for good), and which of them have the stream's
    partition count (`laid_out`: a record's partition is then its order's CDC partition)."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    laid_out: set[str] = field(default_factory=set)


class OrderPipeApp(faust.App):
    """faust.App with the runtime's consumer (it cannot commit past a record it never delivered)
    and producer, a feed for the completion agent (streams.runtime.feed), each record's event
    created without a settings lookup per record (the `Event` setting is read once), the
    output topics' readiness (`outputs`), and the process's completion worker (`completion`:
    `Completion`, a class named as Faust names its own, called with the app), whose
    `start_up_steps` run before the worker's consumer joins the group."""

    def __init__(self, *args, Completion: str, **options) -> None:  # noqa: N803 - as Faust's Worker, Stream...
        super().__init__(*args, **options)
        self.transport.Consumer = NoSkipConsumer
        self.transport.Producer = BatchingProducer
        self.Completion = Completion
        self.outputs = OutputReadiness()
        self.frozen_at_start = 0  # objects moved out of the collector's generations (on_start)

    @cached_property
    def completion(self):
        """This process's completion worker, built at first use."""
        return symbol_by_name(self.Completion)(self)

    @cached_property
    def _event_type(self) -> type:
        return self.conf.Event

    def create_event(self, key, value, headers, message):
        return self._event_type(self, key, value, headers, message)

    def _on_autodiscovery_error(self, name: str) -> None:
        """Faust logs a module that fails to import (an agent's, say) and runs on without it: a
        worker that joins the group and consumes nothing. Stop with the error instead."""
        raise  # noqa: PLE0704 - called by venusian inside its `except`: the import error

    async def on_start(self) -> None:
        """The completion worker's start-up steps, awaited before the consumer joins the group; a
        failure is logged, not fatal, except `StartRefused`, which stops the worker."""
        tune_collector()
        await super().on_start()
        for step in self.completion.start_up_steps():
            try:
                await step()
            except StartRefused as refused:
                logging.getLogger(__name__).critical("worker not started: %s", refused)
                raise SystemExit(EXIT_MISCONFIGURED) from None
            except Exception:  # noqa: BLE001 - the worker runs without it; the step's owner retries
                logging.getLogger(__name__).exception("a start-up step failed; starting anyway")
        self.frozen_at_start = freeze_start_up_heap()

    def on_webserver_init(self, web) -> None:
        check_bind(self.conf.web_bind, web_token())

    @cached_property
    def feed(self) -> Feed:
        """The completion agent's records, straight from the consumer (streams.runtime.feed)."""
        return Feed(self, maxsize=self.conf.stream_buffer_maxsize)
