"""Status coverage: which documented responses of which operations were produced.

Every response that passed all checks is recorded as (operation, response key, status,
source). The gate fails for each documented response key (`200`, `403`, `404`, `default`,
...) that no recorded response matched, unless it was explicitly allowed to stay unreached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pwreset.spec import operation_name, operations


@dataclass(frozen=True)
class DocumentedOperation:
    operation_id: str
    method: str
    path: str
    responses: tuple[str, ...]  # response keys in spec order

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def documented_operations(spec: Mapping[str, Any]) -> list[DocumentedOperation]:
    """Every operation of an OpenAPI document with its documented response keys."""
    found = []
    for path, method, operation in operations(spec):
        keys = tuple(str(key) for key in (operation.get("responses") or {}))
        found.append(DocumentedOperation(operation_name(path, method, operation), method, path, keys))
    return found


def response_key(documented: Iterable[str], status: int) -> str | None:
    """The documented response a status falls under: exact code, then `4XX`, then `default`."""
    keys = {key.upper(): key for key in documented}
    for candidate in (str(status), f"{status // 100}XX"):
        if candidate in keys:
            return keys[candidate]
    return keys.get("DEFAULT")


def parse_allowance(text: str) -> tuple[str, str]:
    """`UserService_SetPassword:404` → ("UserService_SetPassword", "404")."""
    operation_id, sep, key = text.rpartition(":")
    if not sep or not operation_id or not key:
        raise ValueError(f"expected OPERATION_ID:RESPONSE (e.g. UserService_SetPassword:404), got {text!r}")
    return operation_id, key


@dataclass
class StatusCoverage:
    """Records validated responses per (operation, documented response) and judges the gate."""

    operations: list[DocumentedOperation]
    allowed_unreached: frozenset[tuple[str, str]] = frozenset()
    statuses: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)
    sources: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    undocumented: Counter[tuple[str, int]] = field(default_factory=Counter)
    reached_by: dict[tuple[str, str], str] = field(default_factory=dict)  # the reacher that aimed and hit
    tried: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # what reachers sent, in order
    needs: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # flags of tokens reachers lacked

    def __post_init__(self) -> None:
        self._by_id = {op.operation_id: op for op in self.operations}
        unknown = [pair for pair in self.allowed_unreached if pair not in self.documented_pairs()]
        if unknown:
            shown = ", ".join(f"{op}:{key}" for op, key in sorted(unknown))
            raise ValueError(f"allowed-unreached names no documented response: {shown}")

    @classmethod
    def for_spec(cls, spec: Mapping[str, Any], allowed: Iterable[str] = ()) -> StatusCoverage:
        return cls(documented_operations(spec), frozenset(parse_allowance(item) for item in allowed))

    def documented_pairs(self) -> list[tuple[str, str]]:
        return [(op.operation_id, key) for op in self.operations for key in op.responses]

    def record(self, operation_id: str, status: int, source: str) -> str | None:
        """Record a validated response; returns the documented response key it matched."""
        operation = self._by_id.get(operation_id)
        key = response_key(operation.responses, status) if operation else None
        if key is None:
            self.undocumented[(operation_id, status)] += 1
            return None
        self.statuses.setdefault((operation_id, key), Counter())[status] += 1
        self.sources.setdefault((operation_id, key), Counter())[source] += 1
        return key

    def note_reachers(
        self,
        operation_id: str,
        key: str,
        reached_by: str | None,
        tried: list[str],
        missing_tokens: Iterable[str] = (),
    ) -> None:
        """Note what reachers sent for this response, which one produced it, and the flags of
        the tokens some of them needed and did not have (`--foreign-token`)."""
        if reached_by:
            self.reached_by.setdefault((operation_id, key), reached_by)
        self.tried[(operation_id, key)] = tried
        self.needs[(operation_id, key)] = list(dict.fromkeys(missing_tokens))

    def missing_tokens(self) -> dict[str, list[tuple[str, str]]]:
        """Flag of each token some failing response needed → those responses, in spec order."""
        found: dict[str, list[tuple[str, str]]] = {}
        for pair in self.failures():
            for flag in self.needs.get(pair, ()):
                found.setdefault(flag, []).append(pair)
        return found

    def missing_tokens_summary(self) -> list[str]:
        """One line per missing token: `--foreign-token, to reach UserService_SetPassword 404, ...`."""
        return [
            f"{flag}, to reach " + ", ".join(f"{op} {key}" for op, key in pairs)
            for flag, pairs in self.missing_tokens().items()
        ]

    def explain(self, operation_id: str, key: str) -> str:
        """One line on a response never produced: what was tried for it."""
        tried = self.tried.get((operation_id, key))
        shown = "; ".join(tried) if tried else "no reacher had a request for it"
        return f"{operation_id} {key}: tried {shown}"

    def reached(self, operation_id: str, key: str) -> bool:
        return bool(self.statuses.get((operation_id, key)))

    def responses_recorded(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values()) + sum(self.undocumented.values())

    def unreached(self) -> list[tuple[str, str]]:
        return [pair for pair in self.documented_pairs() if not self.reached(*pair)]

    def failures(self) -> list[tuple[str, str]]:
        """Documented responses never produced and not allowed to stay so."""
        return [pair for pair in self.unreached() if pair not in self.allowed_unreached]

    def verdict(self, operation_id: str, key: str) -> str:
        if self.reached(operation_id, key):
            return "reached"
        return "ALLOWED (unreached)" if (operation_id, key) in self.allowed_unreached else "NOT REACHED"

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for op in self.operations:
            for key in op.responses:
                statuses = self.statuses.get((op.operation_id, key), Counter())
                sources = self.sources.get((op.operation_id, key), Counter())
                rows.append(
                    {
                        "operationId": op.operation_id,
                        "method": op.method.upper(),
                        "path": op.path,
                        "response": key,
                        "verdict": self.verdict(op.operation_id, key),
                        "responses": sum(statuses.values()),
                        "statuses": {str(code): n for code, n in sorted(statuses.items())},
                        "sources": dict(sorted(sources.items())),
                        "reachedBy": self.reached_by.get((op.operation_id, key)),
                    }
                )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": not self.failures(),
            "documented": len(self.documented_pairs()),
            "reached": len(self.documented_pairs()) - len(self.unreached()),
            "unreached": [f"{op}:{key}" for op, key in self.failures()],
            "allowedUnreached": [f"{op}:{key}" for op, key in sorted(self.allowed_unreached)],
            "undocumented": [
                {"operationId": op, "status": status, "responses": n}
                for (op, status), n in sorted(self.undocumented.items())
            ],
            "responses": self.rows(),
        }

    def table(self) -> str:
        """The coverage as a fixed-width text table, one row per documented response."""
        header = ("operation", "response", "statuses seen", "via", "reacher", "verdict")
        body = [
            (
                row["operationId"],
                row["response"],
                " ".join(f"{code}×{n}" for code, n in row["statuses"].items()) or "-",
                " ".join(f"{name}×{n}" for name, n in _by_phase(row["sources"]).items()) or "-",
                row["reachedBy"] or "-",
                row["verdict"],
            )
            for row in self.rows()
        ]
        widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        reached = len(self.documented_pairs()) - len(self.unreached())
        lines.append(f"{reached}/{len(self.documented_pairs())} documented responses reached")
        return "\n".join(lines)


PHASE_NAMES = {
    "examples": "ex",
    "coverage": "cov",
    "fuzzing": "fuzz",
    "stateful": "state",
    "readback": "back",
}


def _by_phase(sources: Mapping[str, int]) -> dict[str, int]:
    """Response counts by phase, short names; every reacher call counts as `reach`."""
    counts: Counter[str] = Counter()
    for name, n in sources.items():
        counts["reach" if name.startswith("reacher:") else PHASE_NAMES.get(name, name)] += n
    return dict(counts)
