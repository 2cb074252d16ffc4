"""All configuration the chainotel distro and its CLI read, in one place.

Each field of :class:`DistroSettings` is the environment variable ``CHAINOTEL_<FIELD>`` (upper
case), read once by :meth:`DistroSettings.from_env` — by the configurator when a service starts,
by the ``chainotel`` CLI when a command runs. Durations carry their unit in the name. The
standard ``OTEL_*`` variables keep their OpenTelemetry meaning and are read by the SDK, not here
(the distro only gives some of them defaults, see :mod:`chainotel.distro`).

The configuration reference in ``docs/`` is generated from the field descriptions.

Example::

    >>> DistroSettings.from_env({"CHAINOTEL_TAGGING_ENABLED": "false"}).tagging_enabled
    False
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CATALOG_ENV", "ENV_PREFIX", "DistroSettings", "SettingsError"]

ENV_PREFIX = "CHAINOTEL_"

CATALOG_ENV = ENV_PREFIX + "CATALOG"
"""The variable naming the chain catalog file (:attr:`DistroSettings.catalog`)."""


class SettingsError(ValueError):
    """Invalid ``CHAINOTEL_*`` values; the message names each variable, its value and the problem."""


class DistroSettings(BaseSettings):
    """Configuration of the distro (in every instrumented service) and of the ``chainotel`` CLI.

    A pydantic-settings class (so the generated reference lists it with the analyzer's), whose only
    source is :meth:`from_env`: constructing it reads nothing by itself.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """Only the values passed in (by :meth:`from_env`): the environment is read there, once."""
        return (init_settings,)

    catalog: str = Field(
        "",
        description="Chain catalog YAML file (chainotel catalog validate FILE checks one). Unset or empty: "
        "the built-in catalog of the reference trading platform. An invalid file is logged as one error "
        "naming file, chain and field; the service keeps running with chain tagging off.",
    )
    tagging_enabled: bool = Field(
        True,
        description="false: no chain attributes on spans (tracing, X-Chain-ID and W3C propagation stay on). "
        "The per-service switch of a rollout or rollback; OTEL_SDK_DISABLED=true switches all tracing off.",
    )
    span_attributes: Literal["full", "minimal"] = Field(
        "full",
        description="Which spans of a chain's trace get which chain attributes. full: chain.id, chain.category, "
        "chain.name and chain.instance_id on every span. minimal: all four on each service's local root span "
        "(its entry span: the server span of a request, or a root span), chain.id alone on the other spans — "
        "the analyzer takes a span's category from its chain.id, the instance ID is the trace ID — which saves "
        "the SDK's work on three attributes per span at span creation and at OTLP export. A Jaeger tag search "
        "on chain.category or chain.name then finds the entry spans only (search chain.id for every span).",
    )
    catalog_url: str = Field(
        "",
        pattern=r"^(https?://\S+)?$",
        description="URL of a live chain catalog (the analyzer's GET /api/v1/catalog, e.g. "
        "http://analyzer:4318/api/v1/catalog), polled and swapped in for new traces without a restart. "
        "Unset or empty: no live catalog. Until the first fetch succeeds the service tags by CHAINOTEL_CATALOG "
        "when it is set, else by no chain; on a failed fetch the last good catalog stays in use.",
    )
    catalog_poll_interval_s: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds between two fetches of CHAINOTEL_CATALOG_URL (each wait drawn within ±10 % so "
        "that services do not poll in step); each fetch times out after the smaller of 10 s and this interval.",
    )
    max_traces: int = Field(
        10_000,
        gt=0,
        description="Traces with an open entry span whose chain decision a process keeps (oldest dropped "
        "first); bounds the distro's memory if spans are never ended.",
    )
    startup_log: bool = Field(
        True,
        description="Log one line at start-up (to stderr) naming the "
        "instrumentations opentelemetry-instrument loaded and those it skipped, with the reason (library "
        "absent, library version outside the instrumented range, disabled).",
    )
    analyzer_url: str = Field(
        "http://127.0.0.1:4318",
        pattern=r"^https?://\S+$",
        description="Base URL of chainotel-analyzer that the chainotel CLI's analysis commands query.",
    )
    token: str = Field(
        "",
        repr=False,
        json_schema_extra={"default_text": "(empty)"},
        description="Bearer token the chainotel CLI sends to an analyzer with authentication (a token with "
        "the 'read' scope; 'admin' to resolve alerts). Empty: no Authorization header.",
    )
    demo_dir: str = Field(
        "",
        description="Directory of the demo services (chainotel demo); unset: examples/ of the source tree.",
    )
    peers_bin: str = Field(
        "",
        description="Directory with the jaeger and otelcol-chainotel programs chainotel demo --jaeger runs; "
        "unset: .peers/bin of the source tree (make peers builds them).",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DistroSettings:
        """The settings from ``CHAINOTEL_<FIELD>`` variables of ``environ`` (default ``os.environ``);
        unset or empty (blank) variables take the default.

        Raises:
            SettingsError: a value is invalid (every problem named in the message).
        """
        environ = os.environ if environ is None else environ
        values = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw.strip():
                values[name] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [
                f"{ENV_PREFIX}{str(err['loc'][0]).upper()}={values.get(str(err['loc'][0]), '')!r}: {err['msg']}"
                for err in exc.errors()
            ]
            raise SettingsError("; ".join(problems)) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of ``field`` (``catalog`` → ``CHAINOTEL_CATALOG``); ``KeyError``
        for a name that is not a field."""
        if field not in cls.model_fields:
            raise KeyError(field)
        return ENV_PREFIX + field.upper()
