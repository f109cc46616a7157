"""Handlers for `zitadel.user.v2.UserService`: JSON request → service call → JSON response.

Connexion has validated the request against `openapi.yaml` before a handler runs, and
validates the response after. Each handler gets the `UserService` as its first argument
(bound once at start by `pwreset.app`) and the caller's principal in `token_info`.
The `connect_*` handlers serve the same calls over Connect (the SDKs' protocol), where the
user's id comes in the body, by calling the REST handlers.
"""

from __future__ import annotations

from typing import Any

from pwreset.domain.records import Medium, UserRecord
from pwreset.domain.timestamps import format_timestamp
from pwreset.service import Details, NewHuman, ResetMedium, UserService, Verification

# A JSON object as Connexion hands it over (validated against openapi.yaml) or takes it back.
Json = dict[str, Any]

# Unspecified and Email both mean email.
_NOTIFICATION = {"NOTIFICATION_TYPE_SMS": Medium.SMS}


def details_json(details: Details) -> dict[str, str]:
    out = {
        "sequence": str(details.sequence),
        "changeDate": format_timestamp(details.change_date),
        "resourceOwner": details.resource_owner,
    }
    if details.creation_date is not None:
        out["creationDate"] = format_timestamp(details.creation_date)
    return out


async def add_human_user(service: UserService, body: Json, token_info: Json) -> Json:
    profile, email = body["profile"], body["email"]
    phone = body.get("phone") or {}
    password = body.get("password")
    organization = body.get("organization") or {}
    added = await service.add_human_user(
        token_info["principal"],
        NewHuman(
            given_name=profile["givenName"],
            family_name=profile["familyName"],
            nick_name=profile.get("nickName", ""),
            display_name=profile.get("displayName", ""),
            preferred_language=profile.get("preferredLanguage", ""),
            gender=profile.get("gender", "GENDER_UNSPECIFIED"),
            email=email["email"],
            email_verification=_verification(email),
            phone=phone.get("phone") or None,
            phone_verification=_verification(phone),
            user_id=body.get("userId"),
            username=body.get("username"),
            org_id=organization.get("orgId"),
            org_domain=organization.get("orgDomain"),
            password=password["password"] if password else None,
            password_change_required=bool(password and password.get("changeRequired")),
        ),
    )
    out: dict[str, Any] = {"userId": added.user_id, "details": details_json(added.details)}
    if added.email_code:
        out["emailCode"] = added.email_code
    if added.phone_code:
        out["phoneCode"] = added.phone_code
    return out


def _verification(contact: Json) -> Verification:
    if "isVerified" in contact:
        return Verification.VERIFIED if contact["isVerified"] else Verification.UNVERIFIED
    if "returnCode" in contact:
        return Verification.RETURN
    return Verification.SEND


async def get_user_by_id(service: UserService, user_id: str, token_info: Json) -> Json:
    user = await service.get_user(token_info["principal"], user_id)
    details = details_json(
        Details(user.sequence, user.changed_at, user.org_id, creation_date=user.created_at)
    )
    return {"details": details, "user": _user_json(user, details)}


def _user_json(user: UserRecord, details: Json) -> Json:
    human: dict[str, Any] = {
        "profile": {
            "givenName": user.given_name,
            "familyName": user.family_name,
            "nickName": user.nick_name,
            "displayName": user.display_name,
            "preferredLanguage": user.preferred_language,
            "gender": user.gender,
        },
        "email": _contact("email", user.email, user.email_verified),
    }
    if user.phone:
        human["phone"] = _contact("phone", user.phone, user.phone_verified)
    if user.password_change_required:
        human["passwordChangeRequired"] = True
    if user.password_changed_at is not None:
        human["passwordChanged"] = format_timestamp(user.password_changed_at)
    return {
        "userId": user.id,
        "details": details,
        "state": "USER_STATE_LOCKED" if user.locked else "USER_STATE_ACTIVE",
        "username": user.username,
        "loginNames": [user.username],
        "preferredLoginName": user.username,
        "human": human,
    }


def _contact(kind: str, value: str, verified: bool) -> Json:
    # protojson leaves out false booleans
    return {kind: value, "isVerified": True} if verified else {kind: value}


async def delete_user(service: UserService, user_id: str, token_info: Json) -> Json:
    details = await service.delete_user(token_info["principal"], user_id)
    return {"details": details_json(details)}


async def password_reset(
    service: UserService, user_id: str, token_info: Json, body: Json | None = None
) -> Json:
    body = body or {}
    send_link = body.get("sendLink") or {}
    medium = ResetMedium(
        return_code="returnCode" in body,
        notification=_NOTIFICATION.get(send_link.get("notificationType", ""), Medium.EMAIL),
        url_template=send_link.get("urlTemplate"),
    )
    details, code = await service.request_password_reset(token_info["principal"], user_id, medium)
    out: dict[str, Any] = {"details": details_json(details)}
    if code is not None:
        out["verificationCode"] = code
    return out


async def set_password(service: UserService, user_id: str, body: Json, token_info: Json) -> Json:
    new_password = body.get("newPassword") or {}
    details = await service.set_password(
        token_info["principal"],
        user_id,
        new_password.get("password"),
        change_required=bool(new_password.get("changeRequired")),
        verification_code=body.get("verificationCode"),
        current_password=body.get("currentPassword"),
    )
    return {"details": details_json(details)}


# Connect: the same calls with the user's id in the body instead of the path.


connect_add_human_user = add_human_user  # the request is the same: the id, if any, is in the body


async def connect_get_user_by_id(service: UserService, body: Json, token_info: Json) -> Json:
    return await get_user_by_id(service, body["userId"], token_info)


async def connect_delete_user(service: UserService, body: Json, token_info: Json) -> Json:
    return await delete_user(service, body["userId"], token_info)


async def connect_password_reset(service: UserService, body: Json, token_info: Json) -> Json:
    return await password_reset(service, body["userId"], token_info, body)


async def connect_set_password(service: UserService, body: Json, token_info: Json) -> Json:
    return await set_password(service, body["userId"], body, token_info)
