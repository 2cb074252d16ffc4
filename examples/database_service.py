"""database-service (:8008) of the trading-platform demo: positions, orders, features, market data.

The platform's database API over a real SQLite database through SQLAlchemy (``DEMO_DB_URL``,
default: a file in a temporary directory removed at exit), so traces show the database calls —
with ``opentelemetry-instrumentation-sqlalchemy`` installed (``chainotel[demo]``), each statement
is a client span (``db.system=sqlite``) under the request. No downstream HTTP calls. Runs under
``opentelemetry-instrument uvicorn --app-dir examples database_service:app --port 8008``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile

from pydantic import BaseModel
from sqlalchemy import create_engine, text

from demo_service import service_app

SERVICE = "database-service"
app, _http, faults = service_app(SERVICE)  # no downstream calls


def _database_url() -> str:
    if os.environ.get("DEMO_DB_URL"):
        return os.environ["DEMO_DB_URL"]
    directory = tempfile.mkdtemp(prefix="chainotel-demo-db-")
    atexit.register(shutil.rmtree, directory, True)
    return f"sqlite:///{directory}/trading.db"


_engine = create_engine(_database_url())
with _engine.begin() as _connection:
    for _ddl in (
        "CREATE TABLE IF NOT EXISTS positions (account TEXT, symbol TEXT, quantity REAL)",
        "CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT, symbol TEXT, "
        "side TEXT, quantity REAL, price REAL)",
        "CREATE TABLE IF NOT EXISTS features (symbol TEXT PRIMARY KEY, f0 REAL, f1 REAL, f2 REAL, f3 REAL)",
        "CREATE TABLE IF NOT EXISTS ticks (symbol TEXT PRIMARY KEY, bid REAL, ask REAL)",
    ):
        _connection.execute(text(_ddl))
    if _connection.execute(text("SELECT COUNT(*) FROM positions")).scalar() == 0:
        _connection.execute(text("INSERT INTO positions VALUES ('*', 'BTC-USD', 1.5), ('*', 'ETH-USD', 12.0)"))
        _connection.execute(text("INSERT INTO features VALUES ('*', 0.12, 0.5, -0.3, 0.9)"))


class Order(BaseModel):
    account: str
    symbol: str
    side: str
    quantity: float
    price: float | None = None


def _query(sql: str, **params) -> list:
    with _engine.begin() as connection:
        return list(connection.execute(text(sql), params))


def _insert_order(order: Order) -> int:
    with _engine.begin() as connection:
        return connection.execute(
            text("INSERT INTO orders (account, symbol, side, quantity, price) "
                 "VALUES (:account, :symbol, :side, :quantity, :price)"),
            order.model_dump(),
        ).lastrowid


def _store_ticks(ticks: list[dict]) -> None:
    with _engine.begin() as connection:
        for tick in ticks:
            connection.execute(text("INSERT OR REPLACE INTO ticks VALUES (:symbol, :bid, :ask)"),
                               {"symbol": tick["symbol"], "bid": tick.get("bid"), "ask": tick.get("ask")})


@app.get("/db/positions/{account}")
async def positions(account: str) -> dict:
    await faults.work(4)
    rows = await asyncio.to_thread(_query, "SELECT symbol, quantity FROM positions WHERE account IN (:a, '*')", a=account)
    return {"account": account, "positions": [{"symbol": r.symbol, "quantity": r.quantity} for r in rows]}


@app.post("/db/orders")
async def store_order(order: Order) -> dict:
    await faults.work(6)
    return {"order_id": await asyncio.to_thread(_insert_order, order), **order.model_dump()}


@app.get("/db/features/{symbol}")
async def features(symbol: str) -> dict:
    await faults.work(5)
    rows = await asyncio.to_thread(_query, "SELECT f0, f1, f2, f3 FROM features WHERE symbol IN (:s, '*') LIMIT 1",
                                   s=symbol)
    return {"symbol": symbol, "features": list(rows[0])}


@app.post("/db/market-data")
async def store_ticks(batch: dict) -> dict:
    await faults.work(5)
    ticks = batch.get("ticks", [])
    await asyncio.to_thread(_store_ticks, ticks)
    return {"stored": len(ticks)}
