"""Zitadel's official Python SDK (`zitadel-client`, unchanged) against a real server.

The SDK never calls the REST paths: every method is a Connect call,
`POST /zitadel.user.v2.UserService/<Method>` with a JSON body. It returns None instead of
raising when a 200 answer does not parse into its models (wrong types, enum numbers, bad
timestamps, a non-200 2xx), so every answer here is checked with `isinstance`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from zitadel_client import (
    ApiError,
    UserServiceAddHumanUserRequest,
    UserServiceAddHumanUserResponse,
    UserServiceDeleteUserRequest,
    UserServiceDeleteUserResponse,
    UserServiceDetails,
    UserServiceGetUserByIDRequest,
    UserServiceGetUserByIDResponse,
    UserServiceNotificationType,
    UserServicePassword,
    UserServicePasswordResetRequest,
    UserServicePasswordResetResponse,
    UserServiceSendPasswordResetLink,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
    UserServiceSetPasswordRequest,
    UserServiceSetPasswordResponse,
    UserServiceUserState,
    Zitadel,
)

from tests.support import INITIAL_PASSWORD, MOCK_TOKEN, STRONG_PASSWORD, live_mock, make_token


@pytest.fixture
def sdk(server) -> Iterator[Zitadel]:
    # The SDK prepends https:// to a host without a scheme, so the scheme is written out.
    assert server.base_url.startswith("http://")
    with Zitadel.with_access_token(server.base_url, server.admin_token) as zitadel:
        yield zitadel


def add_user(
    sdk: Zitadel, password: str | None = INITIAL_PASSWORD, unique: str | None = None
) -> UserServiceAddHumanUserResponse:
    """Ada Lovelace as `ada-UNIQUE`, email `ada-UNIQUE@example.com` (UNIQUE random by default)."""
    unique = unique or uuid.uuid4().hex[:12]
    added = sdk.users.add_human_user(
        UserServiceAddHumanUserRequest(
            username=f"ada-{unique}",
            profile=UserServiceSetHumanProfile(given_name="Ada", family_name="Lovelace"),
            email=UserServiceSetHumanEmail(email=f"ada-{unique}@example.com", is_verified=True),
            password=UserServicePassword(password=password, change_required=False) if password else None,
        )
    )
    assert isinstance(added, UserServiceAddHumanUserResponse), added
    return added


def assert_recent(details: UserServiceDetails, resource_owner: str | None = None) -> int:
    """Details parsed into the SDK's types; returns the sequence."""
    assert isinstance(details, UserServiceDetails)
    assert isinstance(details.change_date, datetime)
    assert details.change_date.tzinfo is not None
    assert abs(datetime.now(UTC) - details.change_date) < timedelta(minutes=1)
    assert isinstance(details.resource_owner, str)
    if resource_owner is not None:
        assert details.resource_owner == resource_owner
    # uint64 arrives as a JSON string, as protojson writes it; the SDK keeps it as it came
    assert isinstance(details.sequence, str)
    return int(details.sequence)


@dataclass
class Flow:
    added: UserServiceAddHumanUserResponse
    reset: UserServicePasswordResetResponse
    changed: UserServiceSetPasswordResponse
    read: UserServiceGetUserByIDResponse
    deleted: UserServiceDeleteUserResponse
    username: str


def password_reset_flow(sdk: Zitadel) -> Flow:
    """Create a user with a password, get a reset code returned, set a new password with it,
    read the user back, delete it, and find it gone (404). Asserts only what any compatible
    target must answer, so it runs against the mock as well."""
    unique = uuid.uuid4().hex[:12]
    added = add_user(sdk, unique=unique)
    user_id = added.user_id
    assert isinstance(user_id, str) and user_id

    reset = sdk.users.password_reset(UserServicePasswordResetRequest(user_id=user_id, return_code={}))
    assert isinstance(reset, UserServicePasswordResetResponse), reset
    assert isinstance(reset.verification_code, str) and reset.verification_code

    changed = sdk.users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id,
            new_password=UserServicePassword(password=STRONG_PASSWORD, change_required=False),
            verification_code=reset.verification_code,
        )
    )
    assert isinstance(changed, UserServiceSetPasswordResponse), changed

    read = sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
    assert isinstance(read, UserServiceGetUserByIDResponse), read
    assert read.user.user_id == user_id

    deleted = sdk.users.delete_user(UserServiceDeleteUserRequest(user_id=user_id))
    assert isinstance(deleted, UserServiceDeleteUserResponse), deleted
    with pytest.raises(ApiError) as gone:
        sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
    assert gone.value.code == 404
    return Flow(added, reset, changed, read, deleted, f"ada-{unique}")


def assert_read_back(flow: Flow) -> None:
    """The read returns what was created, and each change moved `details` on by one."""
    created = assert_recent(flow.added.details)
    org = flow.added.details.resource_owner
    assert re.fullmatch(r"[A-Z0-9]{6}", flow.reset.verification_code)
    assert assert_recent(flow.reset.details, org) == created + 1
    assert assert_recent(flow.changed.details, org) == created + 2
    assert assert_recent(flow.read.details, org) == created + 2
    assert flow.read.details.creation_date is not None
    user = flow.read.user
    assert user.state == UserServiceUserState.USER_STATE_ACTIVE
    assert user.human.profile.given_name == "Ada"
    assert user.human.email.is_verified is True
    assert isinstance(user.human.password_changed, datetime)
    assert user.human.password_changed >= flow.added.details.change_date
    assert assert_recent(flow.deleted.details, org) == created + 3
    assert user.human.profile.family_name == "Lovelace"
    assert user.username == flow.username
    assert user.human.email.email == f"{flow.username}@example.com"


def test_password_reset_flow_with_the_official_sdk(sdk):
    assert_read_back(password_reset_flow(sdk))


def test_the_new_password_is_in_force(sdk):
    user_id = add_user(sdk).user_id
    code = sdk.users.password_reset(
        UserServicePasswordResetRequest(user_id=user_id, return_code={})
    ).verification_code
    sdk.users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id,
            new_password=UserServicePassword(password=STRONG_PASSWORD),
            verification_code=code,
        )
    )
    with pytest.raises(ApiError) as old:
        sdk.users.set_password(
            UserServiceSetPasswordRequest(
                user_id=user_id,
                new_password=UserServicePassword(password="An0ther-Passw0rd!"),
                current_password=INITIAL_PASSWORD,
            )
        )
    assert old.value.code == 400
    assert old.value.response_body["details"][0]["debug"]["id"] == "COMMAND-3M0fs"
    again = sdk.users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id,
            new_password=UserServicePassword(password="An0ther-Passw0rd!"),
            current_password=STRONG_PASSWORD,
        )
    )
    assert isinstance(again, UserServiceSetPasswordResponse), again


def test_the_code_is_single_use_for_the_sdk(sdk):
    user_id = add_user(sdk).user_id
    code = sdk.users.password_reset(
        UserServicePasswordResetRequest(user_id=user_id, return_code={})
    ).verification_code
    request = UserServiceSetPasswordRequest(
        user_id=user_id, new_password=UserServicePassword(password=STRONG_PASSWORD), verification_code=code
    )
    assert isinstance(sdk.users.set_password(request), UserServiceSetPasswordResponse)
    with pytest.raises(ApiError) as used:
        sdk.users.set_password(request)
    assert used.value.code == 400
    assert used.value.response_body["code"] == "failed_precondition"
    assert used.value.response_body["details"][0]["debug"]["id"] == "COMMAND-2M9fs"


def test_send_link_returns_no_code_to_the_sdk(sdk):
    user_id = add_user(sdk).user_id
    response = sdk.users.password_reset(
        UserServicePasswordResetRequest(
            user_id=user_id,
            send_link=UserServiceSendPasswordResetLink(
                notification_type=UserServiceNotificationType.NOTIFICATION_TYPE_EMAIL,
                url_template="https://app.example/reset?user={{.UserID}}&code={{.Code}}",
            ),
        )
    )
    assert isinstance(response, UserServicePasswordResetResponse), response
    assert response.verification_code is None


def test_a_plain_dict_request_works_too(sdk):
    user_id = add_user(sdk).user_id
    response = sdk.users.password_reset({"userId": user_id, "returnCode": {}})
    assert isinstance(response, UserServicePasswordResetResponse), response
    assert response.verification_code


def test_unknown_user_is_a_404_api_error(sdk):
    unknown = str(uuid.uuid4())
    with pytest.raises(ApiError) as reset:
        sdk.users.password_reset(UserServicePasswordResetRequest(user_id=unknown, return_code={}))
    assert reset.value.code == 404
    assert reset.value.response_body["code"] == "not_found"
    assert reset.value.response_body["message"] == "User could not be found (COMMAND-SAF4f)"

    with pytest.raises(ApiError) as read:
        sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=unknown))
    assert read.value.code == 404

    with pytest.raises(ApiError) as delete:
        sdk.users.delete_user(UserServiceDeleteUserRequest(user_id=unknown))
    assert delete.value.code == 404


def test_bad_token_is_a_401_api_error(server):
    user_id = str(uuid.uuid4())
    request = UserServicePasswordResetRequest(user_id=user_id, return_code={})
    with (
        Zitadel.with_access_token(server.base_url, "not-a-token") as stranger,
        pytest.raises(ApiError) as err,
    ):
        stranger.users.password_reset(request)
    assert err.value.code == 401
    assert err.value.response_body["code"] == "unauthenticated"


def test_low_privilege_token_is_a_403_api_error(server, sdk):
    user_id = add_user(sdk).user_id
    token = make_token(server, ["user.read"])
    with Zitadel.with_access_token(server.base_url, token) as reader:
        read = reader.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
        assert isinstance(read, UserServiceGetUserByIDResponse), read
        with pytest.raises(ApiError) as err:
            reader.users.password_reset(UserServicePasswordResetRequest(user_id=user_id, return_code={}))
    assert err.value.code == 403
    assert err.value.response_body["code"] == "permission_denied"


def test_both_media_at_once_is_refused(sdk):
    # The SDK does not enforce the oneof; the server must, as protojson would.
    user_id = add_user(sdk).user_id
    with pytest.raises(ApiError) as err:
        sdk.users.password_reset(
            UserServicePasswordResetRequest(
                user_id=user_id, return_code={}, send_link=UserServiceSendPasswordResetLink()
            )
        )
    assert err.value.code == 400
    assert err.value.response_body["code"] == "invalid_argument"


def test_weak_password_is_a_400_api_error_and_changes_nothing(sdk):
    user_id = add_user(sdk).user_id
    code = sdk.users.password_reset(
        UserServicePasswordResetRequest(user_id=user_id, return_code={})
    ).verification_code
    with pytest.raises(ApiError) as err:
        sdk.users.set_password(
            UserServiceSetPasswordRequest(
                user_id=user_id, new_password=UserServicePassword(password="weak"), verification_code=code
            )
        )
    assert err.value.code == 400
    assert err.value.response_body["details"][0]["debug"]["id"] == "DOMAIN-HuJf6"
    ok = sdk.users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id,
            new_password=UserServicePassword(password=STRONG_PASSWORD),
            verification_code=code,
        )
    )
    assert isinstance(ok, UserServiceSetPasswordResponse), ok


class TestAgainstTheStatefulMock:
    """The same SDK flow against `pwreset mock --stateful`, which frontend and backend teams
    can point the SDK at before a real server exists."""

    @pytest.fixture
    def mock_sdk(self) -> Iterator[Zitadel]:
        with (
            live_mock(stateful=True) as client,
            Zitadel.with_access_token(str(client.base_url).rstrip("/"), MOCK_TOKEN) as sdk,
        ):
            yield sdk

    def test_password_reset_flow_reads_back_what_was_created(self, mock_sdk):
        assert_read_back(password_reset_flow(mock_sdk))

    def test_two_users_read_back_their_own_values(self, mock_sdk):
        first, second = add_user(mock_sdk), add_user(mock_sdk)
        read = [
            mock_sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=added.user_id))
            for added in (first, second)
        ]
        assert read[0].user.username != read[1].user.username
        assert read[0].user.human.email.email.startswith(read[0].user.username)

    def test_unknown_user_is_a_404_api_error(self, mock_sdk):
        with pytest.raises(ApiError) as err:
            mock_sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=str(uuid.uuid4())))
        assert err.value.code == 404

    def test_bad_token_is_a_401_api_error(self):
        with live_mock(stateful=True) as client:
            base = str(client.base_url).rstrip("/")
            with Zitadel.with_access_token(base, "not-a-token") as stranger, pytest.raises(ApiError) as err:
                stranger.users.password_reset(UserServicePasswordResetRequest(user_id="1", return_code={}))
        assert err.value.code == 401
