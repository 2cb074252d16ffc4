"""database-service (:8008) of the trading-platform demo: positions, orders, features, market data.

The platform's database API over a real SQLite database through SQLAlchemy, so traces show the
database calls: with ``opentelemetry-instrumentation-sqlalchemy`` installed (``chainotel[demo]``)
each statement is a client span (``db.system=sqlite``) under the request, which the analyzer
names ``sqlite`` on the critical path. No downstream HTTP calls. Runs under
``opentelemetry-instrument uvicorn --app-dir examples database_service:app --port 8008``.

Kept fast enough not to become the demo's bottleneck (:class:`Database`): one connection, used
from the event loop (no thread hand-offs, no SQLite lock waits), WAL journal without a sync per
commit, tables seeded at start and bounded (ticks are one row per symbol, orders the last
``ORDERS_KEPT``). The simulated work (``faults.work``) is 1–2 ms shorter than when it stood
for the whole call: the statements now take part of that time. ``DEMO_DB_PATH`` names the
database file (default: a fresh file in a temporary directory, removed at exit).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, create_engine, event, text

from demo_service import service_app

SERVICE = "database-service"
ORDERS_KEPT = 10_000
"""Orders kept in the table; older ones are deleted as new ones come (bounded data)."""



class Database:
    """A SQLite file through one SQLAlchemy engine with one pooled connection, used from the event
    loop's thread: a statement on these small, indexed tables takes well under a millisecond.
    Run in one worker thread instead, twelve concurrent market-data stores made database-service
    the top of A1's critical path (88 ms per trace on the shared 2-CPU machine: queueing behind the
    one thread, and the hand-offs between it and the busy event loop). Nothing
    ever waits on SQLite's file locks either (whose busy handler sleeps up to 100 ms per retry).

    ``path``: the database file (created, with its tables, by :meth:`setup`).
    """

    def __init__(self, path: str) -> None:
        self.engine = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)
        event.listen(self.engine, "connect", self._pragmas)

    @staticmethod
    def _pragmas(dbapi_connection, _record) -> None:
        # WAL: readers and the writer do not block each other; NORMAL: no fsync per commit in WAL
        # mode (a crash may lose the last commits, never corrupt the file) — a demo needs no more.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @classmethod
    def open(cls) -> Database:
        """The database at ``DEMO_DB_PATH``, else in a temporary directory removed at exit."""
        path = os.environ.get("DEMO_DB_PATH")
        if not path:
            directory = tempfile.mkdtemp(prefix="chainotel-demo-db-")
            atexit.register(shutil.rmtree, directory, True)
            path = os.path.join(directory, "trading.db")
        return cls(path)

    def setup(self, schema: tuple[str, ...], seed: tuple[tuple[str, list[dict]], ...]) -> None:
        """Create the tables (``schema``: DDL statements) and insert the seed rows (``(statement,
        parameter rows)``), in one transaction (at start, before serving)."""
        with self.engine.begin() as connection:
            for ddl in schema:
                connection.execute(text(ddl))
            for statement, rows in seed:
                connection.execute(text(statement), rows)

    def query(self, sql: str, **params: Any) -> list:
        """Rows of one SELECT."""
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def transaction(self, fn: Callable[[Connection, Any], Any], arg: Any) -> Any:
        """``fn(connection, arg)`` in one transaction (committed when it returns, rolled back when it
        raises); its result."""
        with self.engine.begin() as connection:
            return fn(connection, arg)


app, _http, faults = service_app(SERVICE)  # no downstream calls
db = Database.open()

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS positions (account TEXT, symbol TEXT, quantity REAL, PRIMARY KEY (account, symbol))",
    "CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT, symbol TEXT, "
    "side TEXT, quantity REAL, price REAL)",
    "CREATE TABLE IF NOT EXISTS features (symbol TEXT PRIMARY KEY, f0 REAL, f1 REAL, f2 REAL, f3 REAL)",
    "CREATE TABLE IF NOT EXISTS ticks (symbol TEXT PRIMARY KEY, price REAL)",
)
_SEED = (
    ("INSERT OR IGNORE INTO positions VALUES (:account, :symbol, :quantity)",
     [{"account": f"acc-{n}", "symbol": symbol, "quantity": quantity}
      for n in range(1, 10) for symbol, quantity in (("BTC-USD", 1.5), ("ETH-USD", 12.0))]),
    ("INSERT OR IGNORE INTO features VALUES (:symbol, 0.12, 0.5, -0.3, 0.9)",
     [{"symbol": symbol} for symbol in ("BTC-USD", "ETH-USD", "SOL-USD")]),
)
db.setup(_SCHEMA, _SEED)


class Order(BaseModel):
    account: str
    symbol: str
    side: str
    quantity: float
    price: float | None = None


@app.get("/db/positions/{account}")
async def positions(account: str) -> dict:
    await faults.work(3)
    rows = db.query("SELECT symbol, quantity FROM positions WHERE account = :account ORDER BY symbol",
                          account=account)
    return {"account": account, "positions": [{"symbol": r.symbol, "quantity": r.quantity} for r in rows]}


def _insert_order(connection: Connection, order: dict) -> int:
    order_id = connection.execute(
        text("INSERT INTO orders (account, symbol, side, quantity, price) "
             "VALUES (:account, :symbol, :side, :quantity, :price)"), order).lastrowid
    if order_id % 1000 == 0:  # keep the table bounded
        connection.execute(text("DELETE FROM orders WHERE order_id <= :oldest"), {"oldest": order_id - ORDERS_KEPT})
    return order_id


@app.post("/db/orders")
async def store_order(order: Order) -> dict:
    await faults.work(5)
    return {"order_id": db.transaction(_insert_order, order.model_dump()), **order.model_dump()}


@app.get("/db/features/{symbol}")
async def features(symbol: str) -> dict:
    await faults.work(4)
    rows = db.query("SELECT f0, f1, f2, f3 FROM features WHERE symbol = :symbol", symbol=symbol)
    return {"symbol": symbol, "features": list(rows[0]) if rows else [0.0, 0.0, 0.0, 0.0]}


def _store_ticks(connection: Connection, ticks: list[dict]) -> int:
    if ticks:
        connection.execute(text("INSERT OR REPLACE INTO ticks VALUES (:symbol, :price)"),
                           [{"symbol": str(t.get("symbol", "")), "price": t.get("price")} for t in ticks])
    return len(ticks)


@app.post("/db/market-data")
async def store_ticks(batch: dict) -> dict:
    await faults.work(3)
    return {"stored": db.transaction(_store_ticks, list(batch.get("ticks", []))[:1000])}
