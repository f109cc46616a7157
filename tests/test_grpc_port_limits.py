"""The native gRPC port's own limits: metadata size, streams that never end, connection age,
one server per port, health that follows the database, reflection v1 and the words of an
unknown method. Real servers on loopback, grpcio clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from pwreset.grpc_port import GrpcPort, PortInUse
from pwreset.server import ConnectionLimits
from tests.support import live_server, postgres_admin, postgres_database, settings_for_test
from tests.transports import SERVICE, to_message

HEALTH = health_pb2.HealthCheckResponse
# The client's own limits out of the way, so that the server's are the ones tested.
BIG_METADATA_CLIENT = [("grpc.max_metadata_size", 1 << 26), ("grpc.absolute_max_metadata_size", 1 << 26)]


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


@pytest.mark.parametrize("size", [70_000, 1_000_000])
def test_metadata_over_64_kib_is_refused_every_time(server, size):
    message = to_message("GetUserByID", {"userId": "nosuch"})
    with grpc.insecure_channel(server.grpc_target, options=BIG_METADATA_CLIENT) as channel:
        call = channel.unary_unary(SERVICE + "GetUserByID")
        for _ in range(5):
            with pytest.raises(grpc.RpcError) as refused:
                call(message, metadata=(bearer(server.admin_token), ("x-big", "a" * size)), timeout=30)
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # Within the limit, the call is made.
        with pytest.raises(grpc.RpcError) as answered:
            call(message, metadata=(bearer(server.admin_token), ("x-big", "a" * 30_000)), timeout=30)
        assert answered.value.code() is grpc.StatusCode.NOT_FOUND


def test_many_small_headers_count_as_much_as_one_big_one(server):
    message = to_message("GetUserByID", {"userId": "nosuch"})
    headers = tuple((f"x-h{i}", "v" * 8) for i in range(5000))
    with (
        grpc.insecure_channel(server.grpc_target, options=BIG_METADATA_CLIENT) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        channel.unary_unary(SERVICE + "GetUserByID")(message, metadata=headers, timeout=30)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def _watches_until_refused(port: int, most: int) -> int:
    """Open health Watches, each on its own connection, until one is refused; how many were
    served (at most `most`, then stop)."""

    async def scenario() -> int:
        channels, watches = [], []
        try:
            for _ in range(most + 1):
                channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
                channels.append(channel)
                watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
                try:
                    assert (await watch.read()).status == HEALTH.SERVING
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                    break
                watches.append(watch)
            served = len(watches)
            if watches:  # a place freed is a place taken again
                watches.pop().cancel()
                again = health_pb2_grpc.HealthStub(channels[0]).Watch(
                    health_pb2.HealthCheckRequest(), timeout=60
                )
                assert (await again.read()).status == HEALTH.SERVING
                again.cancel()
            return served
        finally:
            for watch in watches:
                watch.cancel()
            for channel in channels:
                await channel.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("limits", "served"),
    [
        ({"max_streaming_calls": 5, "max_streaming_calls_per_address": 100}, 5),
        ({"max_streaming_calls": 100, "max_streaming_calls_per_address": 3}, 3),
    ],
    ids=["in-all", "per-address"],
)
def test_streaming_calls_are_bounded_in_all_and_per_client_address(limits, served):
    """Health Watch (no credentials needed) holds its connection while it lasts: beyond the
    bound in all, or from one address, one more is refused."""

    async def start() -> tuple[GrpcPort, int]:
        listener = GrpcPort(_noop_app, "127.0.0.1", 0, ConnectionLimits(), **limits)
        return listener, await listener.start()

    loop = asyncio.new_event_loop()
    listener, port = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert _watches_until_refused(port, 20) == served
    finally:
        asyncio.run_coroutine_threadsafe(listener.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def _noop_app(scope, receive, send):  # the health service needs no app
    raise AssertionError("not called")


def test_a_watch_does_not_keep_its_connection_past_the_maximum_age():
    async def scenario() -> grpc.StatusCode:
        listener = GrpcPort(_noop_app, "127.0.0.1", 0, ConnectionLimits(), max_connection_age_ms=500)
        port = await listener.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
                assert (await watch.read()).status == HEALTH.SERVING
                try:
                    await watch.read()  # nothing more is said: only the connection's end ends it
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK
        finally:
            await listener.stop(0)

    assert asyncio.run(scenario()) is grpc.StatusCode.UNAVAILABLE


def test_a_taken_grpc_port_is_not_shared(server):
    port = int(server.grpc_target.rsplit(":", 1)[1])

    async def second_listener() -> None:
        listener = GrpcPort(_noop_app, "127.0.0.1", port, ConnectionLimits())
        try:
            await listener.start()
        finally:
            await listener.stop(0)

    taken = rf"port {port} is in use \(127\.0\.0\.1:{port}\); choose another with --grpc-port"
    with pytest.raises(PortInUse, match=taken):
        asyncio.run(second_listener())


@pytest.mark.parametrize("command", ["serve", "mock"])
def test_serve_and_mock_refuse_a_taken_grpc_port_in_one_line(server, tmp_path, command):
    port = server.grpc_target.rsplit(":", 1)[1]
    args = [sys.executable, "-m", "pwreset.cli", command, "--port", "0", "--grpc-port", port]
    if command == "serve":
        args += ["--data-dir", str(tmp_path)]
    finished = subprocess.run(args, capture_output=True, text=True, timeout=60)
    program = {"serve": "pwreset", "mock": "pwreset mock"}
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1] == (
        f"{program[command]}: port {port} is in use (127.0.0.1:{port}); choose another with --grpc-port"
    )
    assert "Traceback" not in finished.stderr


def test_grpc_health_follows_the_database(tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("a SQLite file cannot go away under a running server")
    with (
        postgres_database() as url,
        live_server(settings_for_test(tmp_path, url)) as live,
        grpc.insecure_channel(live.grpc_target) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "zitadel.user.v2.UserService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == HEALTH.SERVING
        asyncio.run(postgres_admin(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        assert httpx.get(live.base_url + "/readyz").status_code == 503
        for name in ("", "zitadel.user.v2.UserService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == HEALTH.NOT_SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_v1_and_the_error_detail_type(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        # ErrorDetail, inside grpc-status-details-bin, can be described (grpcurl decodes it).
        database = ProtoReflectionDescriptorDatabase(channel)
        detail_file = database.FindFileContainingSymbol("zitadel.v1.ErrorDetail")
        assert detail_file.name == "zitadel/message.proto"
        # v1 is v1alpha's messages on another path.
        v1 = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        [answer] = list(v1(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30))
        names = {service.name for service in answer.list_services_response.service}
        assert {"zitadel.user.v2.UserService", "grpc.reflection.v1.ServerReflection"} <= names


def test_an_unknown_method_is_named_alike_on_every_protocol(server):
    path = "/zitadel.user.v2.UserService/ListUsers"
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as native:
        channel.unary_unary(path)(b"", metadata=(bearer(server.admin_token),), timeout=30)
    assert (native.value.code(), native.value.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        f"unknown procedure {path} (PWRESET-Route)",
    )
    connect = httpx.post(
        server.base_url + path, json={}, headers={"authorization": f"Bearer {server.admin_token}"}
    )
    assert (connect.status_code, connect.json()) == (
        404,
        {
            "code": "unimplemented",
            "message": f"unknown procedure {path} (PWRESET-Route)",
            "details": connect.json().get("details"),
        },
    )
