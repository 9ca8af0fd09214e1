"""Span exporter that writes OTLP JSON to a file, shared by the framework agents in this folder.

Formats (the ``--format`` argument of every agent script):

``otlp-json``
    The OTLP/JSON encoding as the OTLP specification defines it (lowerCamelCase field names, hex
    ``traceId``/``spanId``, enums as integers, 64-bit integers as strings), produced by the official
    encoder of ``opentelemetry-exporter-otlp-json-common`` -- the one the official
    ``opentelemetry-exporter-otlp-json-file`` exporter uses. The file holds ONE
    ``{"resourceSpans": [...]}`` document with every span of the process; it is rewritten after each
    exported batch, so it is complete even if the process dies before shutdown.

``otlp-jsonl``
    The official ``opentelemetry-exporter-otlp-json-file`` ``FileSpanExporter`` as it is: the OTLP
    file-exporter format, one OTLP/JSON ``ExportTraceServiceRequest`` per line, one line per batch.

``protobuf-json``
    The protobuf ``ExportTraceServiceRequest`` built by the official
    ``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`` rendered with
    ``google.protobuf.json_format.MessageToDict`` (the generic protobuf JSON mapping: base64
    ``traceId``/``spanId``, enum names such as ``"STATUS_CODE_ERROR"``/``"SPAN_KIND_INTERNAL"``),
    one request per line, flushed after each batch, like the OpenTelemetry Collector ``file``
    exporter's JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

FORMATS = ("otlp-json", "otlp-jsonl", "protobuf-json")


class OtlpFileSpanExporter(SpanExporter):
    """Writes exported spans to ``path`` in one of ``FORMATS``. Truncates the file on creation."""

    def __init__(self, path: str | os.PathLike[str], fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self._path = os.fspath(path)
        self._fmt = fmt
        self._lock = threading.Lock()
        self._spans: list[ReadableSpan] = []  # otlp-json: every span so far
        self._shutdown = False
        parent = os.path.dirname(os.path.abspath(self._path))
        os.makedirs(parent, exist_ok=True)
        open(self._path, "w").close()  # start empty (the official exporter would append)
        if fmt == "otlp-jsonl":
            from opentelemetry.exporter.otlp.json.file import FileSpanExporter

            self._official = FileSpanExporter(self._path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        with self._lock:
            if self._fmt == "otlp-jsonl":
                return self._official.export(spans)
            if self._fmt == "otlp-json":
                from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans

                self._spans.extend(spans)
                document = encode_spans(self._spans).to_dict()
                tmp = self._path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(document, f, ensure_ascii=False)
                    f.write("\n")
                    f.flush()
                os.replace(tmp, self._path)
            else:  # protobuf-json
                from google.protobuf.json_format import MessageToDict
                from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

                request = MessageToDict(encode_spans(spans))
                with open(self._path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(request, ensure_ascii=False, separators=(",", ":")))
                    f.write("\n")
                    f.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if self._fmt == "otlp-jsonl" and not self._shutdown:
            self._official.shutdown()
        self._shutdown = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every agent script in this folder takes."""
    parser.add_argument("--trace", required=True, help="file to write the trace to")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="ask the instrumentation not to record prompts, completions, tool arguments or results",
    )
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="the model calls write_file before claiming the report is saved",
    )
    parser.add_argument(
        "--simple",
        action="store_true",
        help="export each span as it ends (SimpleSpanProcessor) instead of in one batch at the end",
    )


def tracer_provider(args: argparse.Namespace, service_name: str) -> TracerProvider:
    """A TracerProvider exporting to ``args.trace`` in ``args.fmt``. Call ``.shutdown()`` at the end."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OtlpFileSpanExporter(args.trace, args.fmt)
    if args.simple:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        # The processor production code uses; the end-of-run shutdown flushes it as one batch.
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    return provider
