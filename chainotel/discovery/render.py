"""Proposed chains as a chain catalog file: valid YAML that ``chainotel catalog validate`` accepts and
whose chains ``POST /api/v1/chains`` takes one by one, with each proposal's confidence and evidence
as comments above it (a catalog chain has no field for them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import yaml

__all__ = ["proposals_yaml"]


def _comment(text: str, indent: str = "") -> str:
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in text.splitlines())


def proposals_yaml(proposals: Sequence[dict], header: Iterable[str] = ()) -> str:
    """Catalog YAML (``chains:`` list) of ``proposals`` — each ``{"definition", "confidence",
    "evidence", "services": [{"service", "share"}], "traces"}`` as ``POST /api/v1/discovery/scan``
    answers (``traces``/``services`` may be absent, e.g. for proposals from code) — with the
    ``header`` lines and a comment per proposal: confidence, traces, service shares, category reason,
    and ``evidence["locations"]`` (``file:line``) when given.
    """
    out = _comment("\n".join(header)) if header else ""
    out += _comment(f"{len(proposals)} proposed chain(s): review names, categories and SLAs before use.")
    if not proposals:
        return out + "chains: []\n"
    out += "chains:\n"
    for p in proposals:
        evidence = p.get("evidence", {})
        lines = [f"proposal {p['definition']['id']}: confidence {p.get('confidence', 0):.2f}"
                 + (f", {p['traces']} traces" if p.get("traces") is not None else "")]
        if p.get("services"):
            lines.append("services: " + ", ".join(f"{s['service']} {s['share']:.0%}" for s in p["services"]))
        if evidence.get("category_reason"):
            lines.append(f"category: {p['definition']['category']} ({evidence['category_reason']})")
        if evidence.get("matches_registered_chain"):
            lines.append(f"entry also matched by registered chain {evidence['matches_registered_chain']}")
        for location in evidence.get("locations", [])[:5]:
            lines.append(f"from {location}")
        body = yaml.safe_dump([p["definition"]], sort_keys=False, allow_unicode=True, width=120)
        out += _comment("\n".join(lines), "  ") + "".join(f"  {line}\n" for line in body.splitlines())
    return out
