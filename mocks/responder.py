"""Chooses and renders the mock's answer to one validated request.

Order: an explicit preference (status or example) wins; else a fault, at `fault_rate`; else
the state (an unknown or deleted id gets the documented 404); else the success response,
with the example paired by name with the request example the body resembles most. Ids from
the request are echoed into the response where its schema has a field of the same name.
With state, a success answer (but for an explicitly preferred one) carries the values of the
resource it is about (see `mocks.state`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping
from random import Random
from typing import Any

import orjson

from mocks.contract import Choice, Contract, Operation
from mocks.generate import DataGenerator
from mocks.preferences import Preferences
from mocks.settings import MockSettings
from mocks.state import Exists, Missing, Request, ResourceState, Roles, StatefulAnswers, request_value
from pwreset import errors

Answer = tuple[int, str | None, bytes]
_MISSING = object()  # an answer without a body


class Responder:
    def __init__(
        self,
        contract: Contract,
        roles: Roles,
        settings: MockSettings,
        *,
        rng: Random,
        generator: DataGenerator | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        state: ResourceState | None = None,
    ) -> None:
        self.contract = contract
        self.roles = roles
        self.settings = settings
        self.rng = rng
        self.generator = generator or DataGenerator()
        self.sleep = sleep
        self.state = (state if state is not None else ResourceState()) if settings.stateful else None
        self.answers = StatefulAnswers(roles, self.state, rng) if self.state is not None else None

    async def respond(
        self,
        operation: Operation,
        path_params: Mapping[str, Any],
        query: Mapping[str, Any],
        body: Any,
        preferences: Preferences,
    ) -> Answer:
        latency = preferences.latency_ms or self.settings.latency_ms
        if latency:
            await self.sleep(self.rng.uniform(*latency) / 1000)
        explicit = self._explicit(operation, preferences)
        fault = None
        rate = self.settings.fault_rate
        if explicit is None and rate and operation.faults and self.rng.random() < rate:
            fault = self.rng.choice(operation.faults)
        request = Request(operation.method, path_params, query, body)
        choice = explicit or fault or self._from_state(operation, request)
        if choice is None:
            choice = self._default(operation, body)
        value = self._body(choice, preferences, explicit_example=bool(preferences.example))
        answers = self.answers if fault is None and 200 <= choice.status < 300 else None
        if answers is None or explicit is not None or not answers.shapes(operation.operation_id):
            value = self._echo(choice, value, path_params, query, body)  # else shaping sets the ids
        if answers is not None:
            value = answers.answer(
                operation.operation_id, choice.response.schema, value, request, shape=explicit is None
            )
        if value is _MISSING:
            return choice.status, choice.response.media_type, b""
        if choice.example is not None and value is choice.example.value:
            return choice.status, choice.response.media_type, choice.example.payload
        return choice.status, choice.response.media_type, orjson.dumps(value)

    def _explicit(self, operation: Operation, preferences: Preferences) -> Choice | None:
        if preferences.code is not None:
            choice = operation.for_status(preferences.code)
            if choice is None:
                raise errors.invalid_argument(
                    "MOCK-code",
                    f"status {preferences.code} is not documented for {operation.operation_id}; "
                    f"documented: {operation.documented_statuses()}",
                )
            if preferences.example is None:
                return choice
            example = choice.response.example(preferences.example)
            if example is None:
                raise self._unknown_example(operation, preferences.example)
            return Choice(choice.status, choice.response, example)
        if preferences.example is not None:
            choice = operation.named(preferences.example)
            if choice is None:
                raise self._unknown_example(operation, preferences.example)
            return choice
        return None

    @staticmethod
    def _unknown_example(operation: Operation, name: str) -> errors.ApiError:
        return errors.invalid_argument(
            "MOCK-example",
            f"example {name!r} is not documented for {operation.operation_id}; "
            f"examples: {operation.documented_examples() or 'none'}",
        )

    def _from_state(self, operation: Operation, request: Request) -> Choice | None:
        if self.answers is None:
            return None
        try:
            self.answers.check(operation.operation_id, request)
        except Missing as missing:
            choice = operation.for_status(404)
            if choice is None:
                raise errors.ApiError(errors.Code.NOT_FOUND, str(missing), "MOCK-notfound") from None
            return choice
        except Exists as exists:
            raise errors.ApiError(errors.Code.ALREADY_EXISTS, str(exists), "MOCK-exists") from None
        return None

    def _default(self, operation: Operation, body: Any) -> Choice:
        choice = operation.success
        if choice is None:
            response = next(iter(operation.responses.values()))
            status = response.nominal_status or 500
            return Choice(status, response, response.examples[0] if response.examples else None)
        if operation.pairable:
            name = operation.pair(body if isinstance(body, dict) else {})
            example = choice.response.example(name) if name else None
            if example is not None:
                return Choice(choice.status, choice.response, example)
        return choice

    def _body(self, choice: Choice, preferences: Preferences, *, explicit_example: bool) -> Any:
        dynamic = self.settings.dynamic if preferences.dynamic is None else preferences.dynamic
        if dynamic and not explicit_example and choice.response.generatable:
            return self.generator.generate(choice.response.schema, self.rng)
        if choice.example is None:
            return _MISSING
        return choice.example.value

    def _echo(
        self, choice: Choice, value: Any, path_params: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> Any:
        if value is _MISSING or not choice.response.echo_paths:
            return value
        copied = False
        for path in choice.response.echo_paths:
            given = request_value(path[-1], path_params, query, body)
            if not isinstance(given, str):
                continue
            parent = _parent(value, path)
            if parent is None or parent.get(path[-1]) == given:
                continue
            if not copied and choice.example is not None and value is choice.example.value:
                value, copied = copy.deepcopy(value), True
                parent = _parent(value, path)
            if parent is not None:
                parent[path[-1]] = given
        return value


def _parent(value: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    node = value
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
