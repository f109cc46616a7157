"""What the local password blocklist costs: SetPassword with it and without it, in one run.

Usage: python bench/password_rules.py [--requests 60]

Two user services over SQLite files, alike but for the common-password list: the real one
(zxcvbn's lists) and one with an empty list. Each SetPassword by an administrator (argon2id at
the server's default cost, a different password each time) is timed at the service, in
alternating rounds so that machine noise falls on both alike; HTTP would add the same to
both. Then the local check alone (the list, the repeated and sequential characters, the
user's own names), as the service runs it, with timeit.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from argon2 import PasswordHasher, Type  # noqa: E402 - after the checkout is on the path

from pwreset.auth import Principal  # noqa: E402
from pwreset.bootstrap import build_runtime, prepare_database, service_settings  # noqa: E402
from pwreset.config import Settings  # noqa: E402
from pwreset.domain.blocklist import CommonPasswords, blocklist_violation, personal_parts  # noqa: E402
from pwreset.domain.ids import IdGenerator  # noqa: E402
from pwreset.service import NewHuman, UserService  # noqa: E402

ADMIN = Principal("bench", None, frozenset({"user.read", "user.write"}), token_id="bench")


def service(settings: Settings, common: CommonPasswords) -> UserService:
    """The server's user service (its settings, store, keys and argon2id cost), with `common`
    as its list."""
    runtime = build_runtime(settings)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )
    return UserService(
        runtime.store,
        runtime.keys,
        settings=service_settings(settings),
        hasher=hasher,
        now_us=runtime.now_us,
        rng=secrets.SystemRandom(),
        ids=IdGenerator(runtime.now_us),
        common_passwords=common,
    )


async def measure(requests: int) -> dict[str, list[float]]:
    variants = {"with the blocklist": CommonPasswords(), "without the list": CommonPasswords(lambda: ())}
    services, users = {}, {}
    for name, common in variants.items():
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="pwreset-bench-")), grpc_port=-1)
        await prepare_database(settings)
        services[name] = service(settings, common)
        added = await services[name].add_human_user(
            ADMIN, NewHuman(given_name="Bench", family_name="Mark", email="bench@example.com")
        )
        users[name] = added.user_id
        await services[name].set_password(ADMIN, users[name], "Warm-Up-Passw0rd-1")  # loads the list
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(requests):
        for name in variants:
            password = f"Harbour-{i}-{secrets.token_hex(4)}-Qz!"
            started = time.perf_counter()
            await services[name].set_password(ADMIN, users[name], password)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def check_cost(password: str) -> float:
    """µs per local check of `password`, as the service runs it."""
    common = CommonPasswords()
    facts = personal_parts("minnie-mouse", "minnie@example.com", "Minnie", "Mouse", "Mini", "Minnie Mouse")
    blocklist_violation(password, common, facts)  # the list loads once
    number = 2000
    return timeit.timeit(lambda: blocklist_violation(password, common, facts), number=number) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60, help="SetPassword calls per variant")
    args = parser.parse_args()
    times = asyncio.run(measure(args.requests))
    print("| SetPassword (admin, argon2id) | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|")
    for name, samples in times.items():
        ordered = sorted(samples)

        def at(share: float, ordered: list[float] = ordered) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

        print(f"| {name} | {at(0.5):.1f} | {at(0.9):.1f} | {at(0.99):.1f} | {statistics.mean(samples):.1f} |")
    print()
    print("| local check alone | µs per password |")
    print("|---|---|")
    for shape, password in (
        ("8 characters, Zitadel's policy", "Aq7$kP2!"),
        ("a 28-character passphrase", "correct horse battery staple"),
        ("a listed password in disguise", "P@ssw0rd2024!"),
        ("128 characters", "Xk#9vL!2" * 16),
    ):
        print(f"| {shape} | {check_cost(password):.1f} |")
    print()
    print("argon2id dominates SetPassword: the two rows differ by noise; the local check is the")
    print("second table's microseconds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
