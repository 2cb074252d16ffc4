"""Responses never carry the store's raw errors (server paths, query text): those go to the log."""

from __future__ import annotations

import httpx
from google.rpc import status_pb2

from tests.ingest.backpressure_support import served
from tests.ingest.otlp_data import request

SECRET_PATH = "/var/lib/chdb-internal/store/9f1/tmp_insert_all_1_1_0/"


def test_a_failing_store_answers_503_without_its_error(tmp_path, caplog):
    from chainotel_analyzer.settings import AnalyzerSettings

    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", grpc_port=-1, decode_workers=0,
                                batch_max_wait_s=0, retry_after_s=4)  # fmt: skip
    with served(settings) as runtime:
        client = runtime.writer._client

        def broken(*args, **kwargs):
            raise RuntimeError(f"Code: 241. DB::Exception: Cannot write to file {SECRET_PATH}data.bin")

        client.insert_arrow = client.query = client.command = broken  # INSERT, its lookup, the probe
        r = httpx.post(runtime.http + "/v1/traces", content=request(1, 2).SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=30)  # fmt: skip
        assert r.status_code == 503 and r.headers["retry-after"] == "4"
        message = status_pb2.Status.FromString(r.content).message
        assert "retry later" in message and SECRET_PATH not in message and "DB::Exception" not in message
        health = httpx.get(runtime.http + "/health", timeout=30)
        assert health.status_code == 503 and health.headers["retry-after"] == "4"
        assert SECRET_PATH not in health.text and "DB::Exception" not in health.text
    assert SECRET_PATH in caplog.text  # the operator still sees it


def test_health_names_no_server_path(tmp_path):
    from chainotel_analyzer.settings import AnalyzerSettings

    data_dir = tmp_path / "private-data-dir"
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}", grpc_port=-1, decode_workers=0)
    with served(settings) as runtime:
        health = httpx.get(runtime.http + "/health", timeout=30)
        assert health.status_code == 200 and health.json()["store"]["url"] == "chdb://"
        assert str(data_dir) not in health.text
