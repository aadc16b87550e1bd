"""Spans recorded in memory, for the tracing tests only.

OpenTelemetry lets a process install its tracer provider once, so one provider is installed for
the whole test session the first time a test asks for spans. It records only while a test holds
the `spans` fixture, so other tests neither pay for spans nor fill memory with them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.recording = False
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            with self._lock:
                self._spans.append(span)

    def finished(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()


_recorder: Recorder | None = None


def _installed() -> Recorder:
    global _recorder  # noqa: PLW0603 - one provider per process is OpenTelemetry's rule
    if _recorder is None:
        _recorder = Recorder()
        provider = TracerProvider()
        provider.add_span_processor(_recorder)
        trace.set_tracer_provider(provider)
    return _recorder


@pytest.fixture
def spans() -> Iterator[Recorder]:
    recorder = _installed()
    recorder.clear()
    recorder.recording = True
    yield recorder
    recorder.recording = False
    recorder.clear()
